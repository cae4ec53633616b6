# run_hls.tcl: C simulation, C synthesis and IP export of adapter_fwd with AMD
# Vitis HLS (`make -C hls csynth` runs it from the build folder).
# Environment: HLS_DIR (this folder), GOLDEN_DIR (tests/data/fixed), PART,
# CLOCK_NS (default 3.333 = 300 MHz).
set hls_dir [expr {[info exists ::env(HLS_DIR)] ? $::env(HLS_DIR) : [file dirname [info script]]}]
set golden_dir [expr {[info exists ::env(GOLDEN_DIR)] ? $::env(GOLDEN_DIR) : "$hls_dir/../tests/data/fixed"}]
set part [expr {[info exists ::env(PART)] ? $::env(PART) : "xcu250-figd2104-2L-e"}]
set clock_ns [expr {[info exists ::env(CLOCK_NS)] ? $::env(CLOCK_NS) : 3.333}]

open_project -reset adapter_fwd_prj
set_top adapter_fwd
add_files $hls_dir/adapter_fwd.cpp -cflags "-std=c++14 -DHAVE_AP_TYPES -DHAVE_HLS_STREAM"
add_files -tb $hls_dir/tb_adapter_fwd.cpp -cflags "-std=c++14 -DHAVE_AP_TYPES -DHAVE_HLS_STREAM"
open_solution -reset sol1 -flow_target vitis
set_part $part
create_clock -period $clock_ns -name default

csim_design -argv [join [lsort [glob $golden_dir/*.bin]] " "]
csynth_design
export_design -format xo -output adapter_fwd.xo
exit
