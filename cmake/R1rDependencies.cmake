# All third-party dependencies, found once. Debian packages on the CPU machines; on a GPU machine
# LibTorch may come from an installed PyTorch (pass -DCMAKE_PREFIX_PATH=$(python -c 'import torch;print(torch.utils.cmake_prefix_path)')).

find_package(Threads REQUIRED)
find_package(Torch REQUIRED)
find_package(absl REQUIRED)
find_package(GTest REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(spdlog REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n)

# CUDA/NCCL: detected from /usr/local/cuda and from the LibTorch build itself.
set(R1R_HAVE_CUDA OFF)
if(NOT R1R_CUDA STREQUAL "OFF")
  if(TORCH_CXX_FLAGS MATCHES "CUDA" OR TARGET torch_cuda OR TARGET c10_cuda)
    set(R1R_HAVE_CUDA ON)
  endif()
  find_path(R1R_NCCL_INCLUDE nccl.h HINTS ENV NCCL_INCLUDE_DIR /usr/local/cuda/include /usr/include)
  if(R1R_CUDA STREQUAL "ON" AND NOT R1R_HAVE_CUDA)
    message(FATAL_ERROR "R1R_CUDA=ON but LibTorch at ${Torch_DIR} was built without CUDA")
  endif()
endif()
message(STATUS "r1r: CUDA=${R1R_HAVE_CUDA} (R1R_CUDA=${R1R_CUDA}) NCCL header=${R1R_NCCL_INCLUDE}")

# LibTorch's exported flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must match everything that links it.
add_library(r1r_torch INTERFACE)
target_link_libraries(r1r_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(r1r_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
if(R1R_HAVE_CUDA)
  target_compile_definitions(r1r_torch INTERFACE R1R_WITH_CUDA=1)
  # c10d's ProcessGroupNCCL.hpp includes <nccl.h>, which neither the CUDA toolkit nor torch's headers ship.
  if(R1R_NCCL_INCLUDE)
    target_include_directories(r1r_torch SYSTEM INTERFACE ${R1R_NCCL_INCLUDE})
  endif()
endif()

if(R1R_SERVICES)
  find_package(Protobuf REQUIRED)
  find_package(gRPC CONFIG REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
  find_package(yaml-cpp REQUIRED)
  find_package(CURL REQUIRED)
  find_program(R1R_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
  # LibTorch and gRPC/protobuf must share the libstdc++ string ABI: fail here, not at link time.
  include(R1rAbiCheck)
  get_target_property(r1r_grpcpp_lib gRPC::grpc++ LOCATION)
  r1r_check_cxx11_abi("${TORCH_CXX_FLAGS}" "${Protobuf_LIBRARY}" "${r1r_grpcpp_lib}")
endif()
