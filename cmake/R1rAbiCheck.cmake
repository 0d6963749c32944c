# Fails the configure step early when LibTorch and the C++ libraries it is linked with (protobuf, gRPC)
# were built with different libstdc++ string ABIs: such a build would only fail at link time, with
# hundreds of undefined std::string symbols (PyTorch's Linux wheels before 2.7 use the old ABI; Debian's
# gRPC, protobuf, abseil and yaml-cpp the new one).
#
# LibTorch's ABI: -D_GLIBCXX_USE_CXX11_ABI=N in TORCH_CXX_FLAGS (TorchConfig.cmake). A library's ABI:
# whether its dynamic symbol table defines std::__cxx11 symbols (nm -D). Usable in script mode too:
#   cmake -DTORCH_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 -DR1R_ABI_LIBS=/usr/lib/x86_64-linux-gnu/libprotobuf.so \
#         -P cmake/R1rAbiCheck.cmake
function(r1r_check_cxx11_abi torch_flags)
  if(torch_flags MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])")
    set(torch_abi ${CMAKE_MATCH_1})
  else()
    message(STATUS "r1r: LibTorch does not state its _GLIBCXX_USE_CXX11_ABI; ABI check skipped")
    return()
  endif()
  find_program(R1R_NM NAMES nm)
  if(NOT R1R_NM)
    message(STATUS "r1r: no nm; LibTorch/gRPC ABI check skipped")
    return()
  endif()
  foreach(lib IN LISTS ARGN)
    if(NOT lib OR NOT EXISTS "${lib}")
      continue()
    endif()
    execute_process(COMMAND ${R1R_NM} -D --defined-only "${lib}" OUTPUT_VARIABLE syms RESULT_VARIABLE rc ERROR_QUIET)
    if(NOT rc EQUAL 0)
      continue()
    endif()
    if(syms MATCHES "St7__cxx11|B5cxx11")
      set(lib_abi 1)
    else()
      set(lib_abi 0)
    endif()
    if(NOT lib_abi EQUAL torch_abi)
      message(FATAL_ERROR
        "r1r: C++ ABI mismatch. LibTorch is built with _GLIBCXX_USE_CXX11_ABI=${torch_abi} "
        "(TORCH_CXX_FLAGS '${torch_flags}') but ${lib} with _GLIBCXX_USE_CXX11_ABI=${lib_abi}; "
        "linking them fails on std::string symbols. Use a LibTorch with the same ABI (PyTorch >= 2.7 "
        "wheels and Debian's libtorch-dev use the C++11 ABI, =1) or build gRPC/protobuf with it.")
    endif()
    message(STATUS "r1r: ${lib}: _GLIBCXX_USE_CXX11_ABI=${lib_abi}, as LibTorch")
  endforeach()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  r1r_check_cxx11_abi("${TORCH_CXX_FLAGS}" ${R1R_ABI_LIBS})
endif()
