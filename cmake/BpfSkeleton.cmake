# SPDX-License-Identifier: Apache-2.0
# Compiling BPF C into objects and libbpf skeletons.
#
# authwall_vmlinux_header(OUT_DIR_VAR)
#   Provides vmlinux.h: from AUTHWALL_VMLINUX_H if set (a file prepared on a
#   machine with BTF), else generated at configure time with bpftool from
#   /sys/kernel/btf/vmlinux. A build machine without BTF must pass
#   -DAUTHWALL_VMLINUX_H=/path/to/vmlinux.h; configuration stops otherwise,
#   with that advice. The programs use CO-RE only for fields whose layout is
#   stable UAPI, so a vmlinux.h from any 6.x kernel will do.
#
# authwall_bpf_skeleton(TARGET SOURCE)
#   clang -O2 -g -target bpf -D__TARGET_ARCH_<arch>, then `bpftool gen
#   skeleton`; TARGET is an INTERFACE library whose include directory holds
#   <name>.skel.h. <arch> follows CMAKE_SYSTEM_PROCESSOR (cmake/BpfArch.cmake:
#   x86 or arm64; any other processor stops the configuration).
#
# vmlinux.h describes the machine it was dumped on: when cross-compiling,
# pass one dumped on the target architecture (AUTHWALL_VMLINUX_H).

include(BpfArch)
authwall_bpf_target_arch("${CMAKE_SYSTEM_PROCESSOR}" AUTHWALL_BPF_ARCH)
message(STATUS "BPF programs: -D__TARGET_ARCH_${AUTHWALL_BPF_ARCH} (${CMAKE_SYSTEM_PROCESSOR})")

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(AUTHWALL_VMLINUX_H "" CACHE FILEPATH "Pre-generated vmlinux.h (for build machines without /sys/kernel/btf/vmlinux)")

function(authwall_vmlinux_header out_var)
  set(dir ${CMAKE_BINARY_DIR}/vmlinux)
  file(MAKE_DIRECTORY ${dir})
  if(AUTHWALL_VMLINUX_H)
    configure_file(${AUTHWALL_VMLINUX_H} ${dir}/vmlinux.h COPYONLY)
  elseif(EXISTS /sys/kernel/btf/vmlinux)
    if(NOT EXISTS ${dir}/vmlinux.h)
      execute_process(
        COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
        OUTPUT_FILE ${dir}/vmlinux.h
        RESULT_VARIABLE rc
        ERROR_VARIABLE err)
      if(NOT rc EQUAL 0)
        file(REMOVE ${dir}/vmlinux.h)
        message(FATAL_ERROR "bpftool could not dump /sys/kernel/btf/vmlinux: ${err}")
      endif()
    endif()
  else()
    message(FATAL_ERROR
      "This build machine has no kernel BTF (/sys/kernel/btf/vmlinux). "
      "Generate vmlinux.h on a machine that has it "
      "(bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h) "
      "and configure with -DAUTHWALL_VMLINUX_H=/path/to/vmlinux.h")
  endif()
  set(${out_var} ${dir} PARENT_SCOPE)
endfunction()

file(GLOB AUTHWALL_BPF_LIB_HEADERS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../bpf/lib/*.bpf.h)

function(authwall_bpf_skeleton target source)
  get_filename_component(stem ${source} NAME_WE)
  set(out ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${out}/${stem}.bpf.o)
  set(skel ${out}/${stem}.skel.h)
  file(MAKE_DIRECTORY ${out})
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${AUTHWALL_BPF_ARCH} -Wall -Werror
            -I${VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf -c ${source} -o ${obj}
    DEPENDS ${source} ${CMAKE_SOURCE_DIR}/bpf/authwall_abi.h ${AUTHWALL_BPF_LIB_HEADERS}
    COMMENT "BPF ${stem}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${target} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${stem}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${out} ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
endfunction()
