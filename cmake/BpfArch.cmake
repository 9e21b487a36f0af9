# SPDX-License-Identifier: Apache-2.0
# The architecture the BPF programs are compiled for.
#
# authwall_bpf_target_arch(PROCESSOR OUT_VAR)
#   Maps a CMAKE_SYSTEM_PROCESSOR value to libbpf's __TARGET_ARCH_<arch>
#   name (bpf_tracing.h reads it for the register layout): x86_64 or amd64 is
#   x86, aarch64 or arm64 is arm64. Any other processor stops the
#   configuration: the programs and vmlinux.h have only been built and
#   verified on those two only, and a wrong guess would still compile.
#
# Kept apart from BpfSkeleton.cmake (which needs clang and bpftool) so that
# tests/cmake/bpf_arch.cmake can run it with `cmake -P`.

function(authwall_bpf_target_arch processor out_var)
  string(TOLOWER "${processor}" p)
  if(p STREQUAL "x86_64" OR p STREQUAL "amd64")
    set(${out_var} x86 PARENT_SCOPE)
  elseif(p STREQUAL "aarch64" OR p STREQUAL "arm64")
    set(${out_var} arm64 PARENT_SCOPE)
  else()
    message(FATAL_ERROR
      "authwall: no BPF target for processor '${processor}' (CMAKE_SYSTEM_PROCESSOR). "
      "The BPF programs are built for x86_64 (amd64) and aarch64 (arm64) only; "
      "another architecture needs its __TARGET_ARCH_ name in cmake/BpfArch.cmake "
      "and a vmlinux.h of that architecture (-DAUTHWALL_VMLINUX_H=...).")
  endif()
endfunction()
