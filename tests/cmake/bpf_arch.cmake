# SPDX-License-Identifier: Apache-2.0
# cmake/BpfArch.cmake: the processors it maps and the configuration it
# refuses. Run as `cmake -P tests/cmake/bpf_arch.cmake` (ctest unit.bpf_arch);
# with -DPROCESSOR=NAME it only maps NAME, for the refusal below.
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/BpfArch.cmake)

if(DEFINED PROCESSOR)
  authwall_bpf_target_arch("${PROCESSOR}" arch)
  message("arch=${arch}")
  return()
endif()

set(failures 0)
foreach(pair x86_64=x86 amd64=x86 AMD64=x86 aarch64=arm64 arm64=arm64 ARM64=arm64)
  string(REPLACE "=" ";" pair "${pair}")
  list(GET pair 0 processor)
  list(GET pair 1 want)
  authwall_bpf_target_arch("${processor}" got)
  if(got STREQUAL want)
    message("ok    ${processor} -> ${got}")
  else()
    message("FAIL  ${processor} -> '${got}', expected ${want}")
    math(EXPR failures "${failures} + 1")
  endif()
endforeach()

# An unknown processor stops the configuration, naming the processor.
foreach(processor riscv64 armv7l i686 "")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -DPROCESSOR=${processor} -P ${CMAKE_CURRENT_LIST_FILE}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 AND err MATCHES "no BPF target for processor '${processor}'" AND NOT out MATCHES "arch=")
    message("ok    '${processor}' refused")
  else()
    message("FAIL  '${processor}' not refused (exit ${rc}): ${out}${err}")
    math(EXPR failures "${failures} + 1")
  endif()
endforeach()

if(failures GREATER 0)
  message(FATAL_ERROR "${failures} failure(s)")
endif()
