# pp_warnings(<target>): the project's warning set; errors only with PP_WERROR (the presets and CI
# set it), so that a user's or packager's build never fails on one compiler's new warning.
option(PP_WERROR "Treat warnings as errors (CI and presets)" OFF)
function(pp_warnings target)
  if(PP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic
    -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wimplicit-fallthrough -Wformat=2
    # GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch.
    -Wno-mismatched-new-delete)
endfunction()

# pp_library(<name> SOURCES ... DEPS ...): static library pp_<name>, alias pp::<name>.
function(pp_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(pp_${name} STATIC ${ARG_SOURCES})
  add_library(pp::${name} ALIAS pp_${name})
  target_include_directories(pp_${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(pp_${name} PUBLIC ${ARG_DEPS})
  pp_warnings(pp_${name})
endfunction()
