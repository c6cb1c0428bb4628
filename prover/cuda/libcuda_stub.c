/*
 * Link-only stand-in for NVIDIA's driver library (libcuda.so.1), so the
 * GPU prover can be linked on a build machine that has no GPU and no driver.
 * It defines the driver entry points OpenVM's CUDA code calls directly (the
 * virtual-memory pool in openvm-cuda-common's vpmm_shim.cu); everything else
 * goes through libcudart, which loads the real driver at run time.
 *
 * It is never shipped: prover/cuda/build.sh copies only the binary and
 * libcudart, and the binary asks for `libcuda.so.1`, which on a GPU server
 * is the driver's. Every stub answers CUDA_ERROR_NO_DEVICE (100) in case it
 * were ever loaded by mistake.
 */
#define STUB(name) int name(void) { return 100; }
STUB(cuInit)
STUB(cuDeviceGet)
STUB(cuDeviceGetAttribute)
STUB(cuMemAddressFree)
STUB(cuMemAddressReserve)
STUB(cuMemCreate)
STUB(cuMemGetAllocationGranularity)
STUB(cuMemMap)
STUB(cuMemRelease)
STUB(cuMemSetAccess)
STUB(cuMemUnmap)
