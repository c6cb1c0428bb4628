#!/usr/bin/env bash
# Installs NVIDIA's CUDA compiler, headers and runtime from PyPI into a cache
# outside the clone (idempotent), adds the link-only driver stub, and prints
# the environment a `--features cuda` build needs, as `export` lines:
#
#   eval "$(prover/cuda/toolchain.sh)"
#
# Why PyPI: Debian's repositories here carry no CUDA toolkit, and NVIDIA
# publishes nvcc, cicc, the CCCL headers and libcudart as wheels. 13.0.x
# matches the GPU servers' driver (580 / CUDA 13.0); a newer runtime would
# refuse to start on that driver. nvidia-nvvm (cicc) is pinned too: left to
# pip it comes newer than ptxas and emits PTX that ptxas 13.0 refuses
# ("Unsupported .version 9.5").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CACHE="${PRIVIDIUM_CUDA:-$HOME/.cache/prividium-cuda}"
VERSION="13.0"
stamp="$CACHE/.installed-$VERSION-2"

if [[ ! -f "$stamp" ]]; then
  echo "installing CUDA $VERSION toolchain from PyPI into $CACHE" >&2
  mkdir -p "$CACHE"
  python3 -m pip install --quiet --disable-pip-version-check --target "$CACHE/py" --upgrade \
    "nvidia-cuda-nvcc==$VERSION.*" "nvidia-cuda-cccl==$VERSION.*" \
    "nvidia-cuda-runtime==$VERSION.*" "nvidia-cuda-crt==$VERSION.*" \
    "nvidia-nvvm==$VERSION.*" >&2
  cu="$CACHE/py/nvidia/cu13"
  [[ -x "$cu/bin/nvcc" ]] || { echo "nvcc missing under $cu/bin" >&2; exit 1; }
  # The wheels ship only the versioned runtime; the linker wants the plain name.
  ln -sf libcudart.so.13 "$cu/lib/libcudart.so"
  # nvcc looks for cicc/libdevice under the toolkit's nvvm/ folder; the nvvm
  # wheel installs it beside cu13 on some versions, inside it on others.
  if [[ ! -e "$cu/nvvm" && -d "$CACHE/py/nvidia/nvvm" ]]; then ln -sfn ../nvvm "$cu/nvvm"; fi
  touch "$stamp"
fi

# Link-only stub of the driver library: the build machine has no GPU and no
# driver, but the CUDA crates link against libcuda. The stub carries the
# soname `libcuda.so.1` and is never shipped: on a GPU server the loader
# finds the real driver's libcuda.so.1 instead.
mkdir -p "$CACHE/stub"
if [[ "$here/libcuda_stub.c" -nt "$CACHE/stub/libcuda.so" ]]; then
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CACHE/stub/libcuda.so" "$here/libcuda_stub.c"
fi

cu="$CACHE/py/nvidia/cu13"
cat <<ENV
export CUDA_PATH="$cu"
export CUDA_HOME="$cu"
export CUDA_LIB_DIR="$cu/lib"
export PATH="$cu/bin:\$PATH"
export LIBRARY_PATH="$cu/lib:$CACHE/stub\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export CUDA_ARCH="\${CUDA_ARCH:-90}"
export NVCC_THREADS="\${NVCC_THREADS:-2}"
export PRIVIDIUM_CUDA_STUB="$CACHE/stub/libcuda.so"
ENV
