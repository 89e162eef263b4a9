// dsv4 bench -m DIR: end-to-end throughput of a checkpoint on this machine,
// against the machine's own limits (DRAM read bandwidth, disk read
// bandwidth), cold and warm, all in RAM or paging experts under a budget.
#pragma once

namespace dsv4::cli {

// argv[0] is "dsv4 bench"; the options are those of `dsv4 bench -m DIR`.
int RunModelBench(int argc, char** argv);

}  // namespace dsv4::cli
