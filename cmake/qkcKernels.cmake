# qkcKernels.cmake — qkc_add_kernels(): kernels compiled ahead of time by
# `qkc build` as one step of a CMake build.
#
#   qkc_add_kernels(<target> SOURCES a.qk [b.qk ...]
#                   [TARGETS host|x86-64-v3|x86-64-v4|aarch64[+dotprod][+sve]|sm_80|sm_90 ...]
#                   [PREFIX p] [KERNELS k1 k2 ...] [LAYOUT own|any]
#                   [DEPENDS file ...])
#
# adds a custom command that runs `qkc build` and writes
# ${CMAKE_CURRENT_BINARY_DIR}/<target>.a and <target>.h, and defines
# <target>: an INTERFACE library that links that archive and qkc::rt and
# puts the header's directory on the include path. Link it and include
# "<target>.h". The command reruns when a source, a DEPENDS file or the
# qkc executable changes. (`qkc build` writes no list of the files a
# source imports: name imported files of your own under DEPENDS.)
#
# TARGETS: a CMake list or a comma-separated string (default: host, the
# CPU of the machine that builds). PREFIX: the C prefix of the generated
# names (default: <target>). KERNELS: only these kernels (default: all).
# LAYOUT: `qkc build --layout`. own (default) reads every weight in its
# format's bytes; any lets each target's version read a weight in the
# layout it runs fastest on (row-interleaved for the int8 dot path), and
# the header then declares <prefix>_<kernel>_<W>_repack, which converts
# the packer's bytes on the machine that launches (docs/embedding.md).
#
# It needs the executable target qkc::qkc_cli and the library target
# qkc::rt: find_package(qkc) defines both; qkc's own build tree defines
# them as aliases of its targets qkc and qkc_rt.
include_guard(GLOBAL)

function(qkc_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PREFIX;LAYOUT" "SOURCES;TARGETS;KERNELS;DEPENDS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "qkc_add_kernels(${target}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "qkc_add_kernels(${target}): no SOURCES")
  endif()
  if("LAYOUT" IN_LIST arg_KEYWORDS_MISSING_VALUES OR DEFINED arg_LAYOUT AND NOT arg_LAYOUT MATCHES "^(own|any)$")
    message(FATAL_ERROR "qkc_add_kernels(${target}): LAYOUT is own or any, not '${arg_LAYOUT}'")
  endif()
  if(NOT TARGET qkc::qkc_cli OR NOT TARGET qkc::rt)
    message(FATAL_ERROR "qkc_add_kernels(${target}): needs the targets qkc::qkc_cli and qkc::rt (find_package(qkc) first)")
  endif()

  set(sources "")
  foreach(src IN LISTS arg_SOURCES)
    get_filename_component(src "${src}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND sources "${src}")
  endforeach()
  set(deps "")
  foreach(dep IN LISTS arg_DEPENDS)
    get_filename_component(dep "${dep}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND deps "${dep}")
  endforeach()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}")
  set(archive "${dir}/${target}.a")
  set(header "${dir}/${target}.h")
  set(args build ${sources} -o "${archive}" --header "${header}")
  if(arg_TARGETS)
    string(REPLACE ";" "," isas "${arg_TARGETS}")
    list(APPEND args --target "${isas}")
  endif()
  if(arg_PREFIX)
    list(APPEND args --prefix "${arg_PREFIX}")
  endif()
  if(arg_LAYOUT)
    list(APPEND args --layout "${arg_LAYOUT}")
  endif()
  if(arg_KERNELS)
    string(REPLACE ";" "," kernels "${arg_KERNELS}")
    list(APPEND args --kernel "${kernels}")
  endif()

  # The executable as a file dependency too, so a new qkc rebuilds the
  # kernels (in qkc's own tree the COMMAND also orders the build after it).
  add_custom_command(
    OUTPUT "${archive}" "${header}"
    COMMAND qkc::qkc_cli ${args}
    DEPENDS ${sources} ${deps} "$<TARGET_FILE:qkc::qkc_cli>"
    COMMENT "qkc build ${target}"
    VERBATIM)
  add_custom_target(${target}_qkc_build DEPENDS "${archive}" "${header}")

  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_qkc_build)
  target_include_directories(${target} INTERFACE "${dir}")
  target_link_libraries(${target} INTERFACE "${archive}" qkc::rt)
endfunction()
