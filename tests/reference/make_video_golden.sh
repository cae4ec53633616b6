#!/usr/bin/env bash
# make_video_golden.sh: the decode goldens in tests/data/video, written by
# Debian's ffmpeg CLI (FFmpeg 5.1), independent of stacl's decoder.
#  1. Small test videos, one per container/codec stacl must read, from
#     FFmpeg's testsrc2 pattern (64x48, 24 frames at 8 fps).
#  2. For each, frames 0, 7 and 23 as rgb24 (`select` counts decoded frames;
#     -fps_mode passthrough keeps the CLI from duplicating or dropping any).
#  3. For opencv-doc's real videos (too big to copy), a 32x32 rgb24 window of
#     three frames each, at the offsets listed below.
# usage: tests/reference/make_video_golden.sh [OUT_DIR]   (default tests/data/video)
set -euo pipefail
cd "$(dirname "$0")/../.."
final="${1:-tests/data/video}"
mkdir -p "$final"
# Written into a scratch folder and moved into place at the end, so a reader
# (or a commit) never sees a half-written file.
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# bitexact: no random Matroska UIDs or encoder version strings, so a rerun
# reproduces the committed files byte for byte.
ff=(ffmpeg -hide_banner -loglevel error -y)
bx=(-fflags +bitexact -flags:v +bitexact)
src=(-f lavfi -i "testsrc2=size=64x48:rate=8:duration=3")

"${ff[@]}" "${src[@]}" -c:v libx264 -pix_fmt yuv420p -threads 1 -bf 2 -g 8 "${bx[@]}" "$out/h264.mp4"
"${ff[@]}" "${src[@]}" -c:v libvpx-vp9 -pix_fmt yuv420p -threads 1 -g 8 -b:v 200k "${bx[@]}" "$out/vp9.webm"
"${ff[@]}" "${src[@]}" -c:v mjpeg -pix_fmt yuvj420p -q:v 3 "${bx[@]}" "$out/mjpeg.avi"
"${ff[@]}" "${src[@]}" -c:v ffv1 -pix_fmt yuv444p "${bx[@]}" "$out/ffv1.mkv"

frames() { # video out.rgb "filters after select" idx...
    local v="$1" o="$2" extra="$3"
    shift 3
    local sel=""
    for i in "$@"; do sel="${sel:+$sel+}eq(n\\,$i)"; done
    "${ff[@]}" -i "$v" -vf "select='$sel'${extra:+,$extra}" -fps_mode passthrough -f rawvideo -pix_fmt rgb24 "$o"
}
for v in h264.mp4 vp9.webm mjpeg.avi ffv1.mkv; do
    frames "$out/$v" "$out/$v.f0_7_23.rgb" "" 0 7 23
done

data=/usr/share/doc/opencv-doc/examples/data
# name  window(x:y)  frames
frames "$data/Megamind.avi" "$out/Megamind.avi.x300y200.f0_135_269.rgb" "format=rgb24,crop=32:32:300:200" 0 135 269
frames "$data/vtest.avi" "$out/vtest.avi.x400y300.f0_400_794.rgb" "format=rgb24,crop=32:32:400:300" 0 400 794
frames "$data/tree.avi" "$out/tree.avi.x150y100.f0_34_67.rgb" "format=rgb24,crop=32:32:150:100" 0 34 67
chmod 644 "$out"/*
mv -f "$out"/* "$final"/
ls -l "$final"
