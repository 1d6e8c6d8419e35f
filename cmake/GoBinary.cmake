# pp_go_binary(<name> PACKAGE <import path> GOPATH_ROOTS <dir>...): build a Go program offline in
# GOPATH mode (GO111MODULE=off) against Debian's Go packages in /usr/share/gocode plus the given
# roots, into ${CMAKE_BINARY_DIR}/bin/<name>. Creates a target <name> (in ALL) whose property
# PP_GO_OUTPUT holds the binary's path, e.g. $<TARGET_PROPERTY:<name>,PP_GO_OUTPUT> in add_test.
# It rebuilds when any .go file under the roots changes; go's own cache (GOCACHE under the build
# dir) keeps that cheap. Go builds run one at a time (ninja pool go_build) on these small machines.
find_program(PP_GO_EXECUTABLE go REQUIRED)
set_property(GLOBAL APPEND PROPERTY JOB_POOLS go_build=1)

function(pp_go_binary name)
  cmake_parse_arguments(ARG "" "PACKAGE" "GOPATH_ROOTS" ${ARGN})
  if(NOT ARG_PACKAGE OR NOT ARG_GOPATH_ROOTS)
    message(FATAL_ERROR "pp_go_binary(${name}): PACKAGE and GOPATH_ROOTS are required")
  endif()
  set(gopath /usr/share/gocode)
  set(sources)
  foreach(root ${ARG_GOPATH_ROOTS})
    get_filename_component(root ${root} ABSOLUTE)
    string(APPEND gopath ":${root}")
    file(GLOB_RECURSE root_sources CONFIGURE_DEPENDS ${root}/*.go)
    list(APPEND sources ${root_sources})
  endforeach()

  set(output ${CMAKE_BINARY_DIR}/bin/${name})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E env
            GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH=${gopath}
            GOCACHE=${CMAKE_BINARY_DIR}/go-cache
            ${PP_GO_EXECUTABLE} build -o ${output} ${ARG_PACKAGE}
    DEPENDS ${sources}
    JOB_POOL go_build
    COMMENT "go build ${ARG_PACKAGE}"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${output})
  set_target_properties(${name} PROPERTIES PP_GO_OUTPUT ${output})
endfunction()
