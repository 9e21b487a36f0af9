# SPDX-License-Identifier: Apache-2.0
# Warnings and hardened code generation for every C++ target of the project.
# BPF objects are compiled separately (cmake/BpfSkeleton.cmake).

add_compile_options(
  $<$<COMPILE_LANGUAGE:CXX>:-Wall>
  $<$<COMPILE_LANGUAGE:CXX>:-Wextra>
  $<$<COMPILE_LANGUAGE:CXX>:-Wpedantic>
  $<$<COMPILE_LANGUAGE:CXX>:-Wshadow>
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>
  $<$<COMPILE_LANGUAGE:CXX>:-Wcast-align>
  $<$<COMPILE_LANGUAGE:CXX>:-Wformat=2>
  $<$<COMPILE_LANGUAGE:CXX>:-Wimplicit-fallthrough>)
if(AUTHWALL_WERROR)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()

# Hardening: stack protector, FORTIFY (needs optimisation), PIE, full RELRO,
# non-executable stack, stack clash and control-flow protection.
add_compile_options(-fstack-protector-strong -fstack-clash-protection -fcf-protection=full)
if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug" AND NOT AUTHWALL_SANITIZE)
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported()
add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack -Wl,--as-needed)

if(AUTHWALL_FUZZ)
  set(AUTHWALL_SANITIZE ON)
  # Coverage for libFuzzer in every object the targets link.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
if(AUTHWALL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_compile_definitions(AUTHWALL_SANITIZED)
  add_link_options(-fsanitize=address,undefined)
endif()
