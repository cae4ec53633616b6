// hls_compat.h: what the HLS kernels need beyond adapter_fwd.h's types, with
// fallbacks so that g++ builds them for C simulation: hls::stream (Vitis'
// hls_stream.h when present, else a minimal unbounded stand-in) and quiet
// loop labels. Included by adapter_fwd.cpp and adapter_bwd.cpp only.
#ifndef STACL_HLS_COMPAT_H
#define STACL_HLS_COMPAT_H

// Loop labels name loops in the HLS reports; to g++ they are unused labels.
#if defined(__GNUC__) && !defined(__SYNTHESIS__)
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#if defined(__SYNTHESIS__) || defined(HAVE_HLS_STREAM) || \
    (defined(__has_include) && __has_include(<hls_stream.h>))
#include <hls_stream.h>
#else
// hls_stream.h is not in Debian: a minimal, unbounded stand-in for C
// simulation (dataflow processes then run one after another, each to the end).
#include <cstdio>
#include <cstdlib>
#include <queue>
namespace hls {
template <typename T> class stream {
  public:
    stream() {}
    explicit stream(const char *) {}
    void write(const T &v) { q_.push(v); }
    T read() {
        if (q_.empty()) {
            std::fprintf(stderr, "hls::stream (fallback): read from an empty stream\n");
            std::abort();
        }
        T v = q_.front();
        q_.pop();
        return v;
    }
    bool empty() const { return q_.empty(); }
    size_t size() const { return q_.size(); }

  private:
    std::queue<T> q_;
};
} // namespace hls
#endif

#endif
