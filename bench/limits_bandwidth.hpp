// Memory read bandwidth: what streaming a model's weights from DRAM can cost at best. Part
// of kiln_bench_machine_limits.
#pragma once

#include <cstddef>

namespace bench {

// A buffer of `bytes`, written once (so its pages are resident), then read whole by
// `threads` threads, each its own contiguous part, `passes` times; returns the median
// pass's GB/s (1e9 bytes per second).
double read_bandwidth_gbs(std::size_t bytes, int threads, int passes);

}  // namespace bench
