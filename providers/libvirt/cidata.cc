#include "providers/libvirt/cidata.h"

// Our own burn_source reader, without libburn: libisofs then provides the struct definition.
#define LIBISOFS_WITHOUT_LIBBURN
#include <libisofs/libisofs.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace pp::providers::libvirt {
namespace {

struct ImageUnref {
  void operator()(IsoImage* image) const { iso_image_unref(image); }
};
struct OptsFree {
  void operator()(IsoWriteOpts* opts) const { iso_write_opts_free(opts); }
};
struct BurnSourceFree {
  void operator()(burn_source* source) const {
    source->free_data(source);
    std::free(source);
  }
};

Error IsoError(std::string_view what, int rc) {
  return Error{Code::kInternal, std::string("cidata ISO: ") + std::string(what) + ": " + iso_error_to_msg(rc)};
}

// libisofs keeps process-wide state; iso_init once.
Result<void> InitOnce() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = iso_init(); });
  if (rc < 0) return std::unexpected(IsoError("iso_init", rc));
  return {};
}

Result<void> AddFile(IsoImage* image, const char* name, const std::string& content) {
  // The memory stream takes ownership of a malloc'ed buffer (it frees it with free()).
  auto* buffer = static_cast<unsigned char*>(std::malloc(content.empty() ? 1 : content.size()));
  if (buffer == nullptr) return Fail(Code::kResourceExhausted, "cidata ISO: out of memory");
  std::memcpy(buffer, content.data(), content.size());
  IsoStream* stream = nullptr;
  if (int rc = iso_memory_stream_new(buffer, content.size(), &stream); rc < 0) {
    std::free(buffer);
    return std::unexpected(IsoError("memory stream", rc));
  }
  IsoFile* file = nullptr;
  // The file takes over our reference to the stream, on success only.
  const int rc = iso_image_add_new_file(image, iso_image_get_root(image), name, stream, &file);
  if (rc < 0) {
    iso_stream_unref(stream);
    return std::unexpected(IsoError(name, rc));
  }
  iso_node_set_permissions(reinterpret_cast<IsoNode*>(file), 0400);
  return {};
}

}  // namespace

Result<std::string> MakeCidataIso(const std::string& user_data, const std::string& hostname) {
  if (auto ok = InitOnce(); !ok) return std::unexpected(ok.error());
  IsoImage* raw_image = nullptr;
  if (int rc = iso_image_new("cidata", &raw_image); rc < 0) return std::unexpected(IsoError("new image", rc));
  const std::unique_ptr<IsoImage, ImageUnref> image(raw_image);

  const std::string meta_data = "instance-id: " + hostname + "\nlocal-hostname: " + hostname + "\n";
  const std::string vendor_data;
  const std::pair<const char*, const std::string*> files[] = {
      {"user-data", &user_data}, {"meta-data", &meta_data}, {"vendor-data", &vendor_data}};
  for (const auto& [name, content] : files) {
    if (auto added = AddFile(image.get(), name, *content); !added) return std::unexpected(added.error());
  }

  IsoWriteOpts* raw_opts = nullptr;
  if (int rc = iso_write_opts_new(&raw_opts, 0); rc < 0) return std::unexpected(IsoError("write options", rc));
  const std::unique_ptr<IsoWriteOpts, OptsFree> opts(raw_opts);
  iso_write_opts_set_rockridge(opts.get(), 1);
  // No Joliet: libcdio (process-user-data) cannot find files in libisofs' Joliet tree. Instead the
  // plain ISO 9660 names equal the real ones ("user-data", not "USER_DAT.;1"), for readers that
  // ignore Rock Ridge.
  iso_write_opts_set_iso_level(opts.get(), 2);
  iso_write_opts_set_allow_full_ascii(opts.get(), 1);
  iso_write_opts_set_allow_lowercase(opts.get(), 1);
  iso_write_opts_set_omit_version_numbers(opts.get(), 1);
  iso_write_opts_set_no_force_dots(opts.get(), 1);
  iso_write_opts_set_relaxed_vol_atts(opts.get(), 1);  // the label stays lower case: "cidata"

  burn_source* raw_source = nullptr;
  if (int rc = iso_image_create_burn_source(image.get(), opts.get(), &raw_source); rc < 0) {
    return std::unexpected(IsoError("writer", rc));
  }
  const std::unique_ptr<burn_source, BurnSourceFree> source(raw_source);
  std::string iso;
  unsigned char block[2048];
  for (;;) {
    const int n = source->read_xt(source.get(), block, sizeof block);
    if (n < 0) return Fail(Code::kInternal, "cidata ISO: writing the image failed");
    if (n == 0) break;
    iso.append(reinterpret_cast<const char*>(block), static_cast<std::size_t>(n));
  }
  return iso;
}

}  // namespace pp::providers::libvirt
