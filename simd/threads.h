// The one OpenMP team every kernel runs on: its size and its placement.
#pragma once

namespace dsv4 {

// Physical cores this process may run on (SMT siblings count once), >= 1.
int PhysicalCores();

// Sets the team size used by MatMul and the other kernels (omp_set_num_threads)
// and pins thread i to the i-th allowed CPU, spreading over physical cores
// first, unless the user placed the threads already (OMP_PROC_BIND or
// OMP_PLACES set). threads <= 0 means the first number of OMP_NUM_THREADS when
// it is set, else PhysicalCores(). Call it outside any
// parallel region, before the first kernel runs.
void SetThreadCount(int threads);

}  // namespace dsv4
