# pp_proto_library(<name> PROTOS a.proto ... [ROOT dir] [DEPS ...]): generate C++ with protoc and
# build a static library pp_<name> (alias pp::<name>). Paths are relative to ROOT (default proto/);
# imports resolve from ROOT, proto/ and protobuf's own include dir. Generated headers are included
# by their path under ROOT, e.g. "hypervisor.pb.h" or "agent/agent.pb.h".
function(pp_proto_library name)
  cmake_parse_arguments(ARG "" "ROOT" "PROTOS;DEPS" ${ARGN})
  if(NOT ARG_ROOT)
    set(ARG_ROOT ${CMAKE_SOURCE_DIR}/proto)
  endif()
  set(out_dir ${CMAKE_BINARY_DIR}/gen)
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    set(abs ${ARG_ROOT}/${proto})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(cc ${out_dir}/${stem}.pb.cc)
    set(h ${out_dir}/${stem}.pb.h)
    add_custom_command(
      OUTPUT ${cc} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND protobuf::protoc --cpp_out=${out_dir} -I${ARG_ROOT} -I${CMAKE_SOURCE_DIR}/proto
              -I${Protobuf_INCLUDE_DIR} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${cc})
  endforeach()
  add_library(pp_${name} STATIC ${srcs})
  add_library(pp::${name} ALIAS pp_${name})
  target_include_directories(pp_${name} SYSTEM PUBLIC ${out_dir})
  target_link_libraries(pp_${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
endfunction()
