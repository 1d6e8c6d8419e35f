// The instances.insert request body
// (https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert), built from plain
// values without I/O so that tests can check every field, and the naming rules of the resources it
// refers to.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "providers/provider.h"

namespace pp::providers::gcp {

// Owner labels (for instances.list filters) and metadata items of the same names holding the exact
// values (labels must be sanitised, see LabelValue, so they may lose detail).
inline constexpr std::string_view kNodeLabel = "peerpods-node";
inline constexpr std::string_view kSandboxLabel = "peerpods-sandbox";

struct InstanceBodyParams {
  std::string project;
  std::string zone;
  std::string name;
  std::string machine_type;  // short name, e.g. n2d-standard-4
  std::string source_image;  // as ResolveImage returns it
  std::string disk_type = "pd-standard";
  unsigned long long disk_size_gb = 0;  // 0: the image's size
  std::string network;                  // as ResolveNetwork returns it
  std::string subnetwork;               // as ResolveSubnetwork returns it; empty: none
  bool public_ip = false;
  std::string confidential_type;          // SEV, SEV_SNP, TDX; empty: not a confidential VM
  bool terminate_on_maintenance = false;  // GPUs (confidential VMs always)
  std::string user_data;                  // plain text; sent base64 (secret: never logged)
  Owner owner;
  std::map<std::string, std::string> extra_labels;  // TAGS, already valid labels
};

// The JSON body.
std::string BuildInstanceBody(const InstanceBodyParams& p);

// GCP label rules (https://cloud.google.com/compute/docs/labeling-resources#requirements): keys
// 1-63 characters of [a-z0-9_-] starting with a letter; values 0-63 characters of [a-z0-9_-].
bool IsValidLabelKey(std::string_view key);
bool IsValidLabelValue(std::string_view value);
// A valid label value for any text: lower-cased, other characters -> '-', and when longer than 63
// characters cut to 54 plus '-' and 8 hex digits of a hash of the whole, so that long values
// stay distinct.
std::string LabelValue(std::string_view text);

// Instance names: RFC 1035, [a-z]([-a-z0-9]{0,61}[a-z0-9])?
bool IsValidInstanceName(std::string_view name);
// Zone names: <region>-<letter>, e.g. us-central1-a.
bool IsValidZoneName(std::string_view zone);
// "us-central1-a" -> "us-central1".
std::string RegionOfZone(std::string_view zone);

// CAA's image forms: "projects/<p>/global/images/<i>", "/projects/...", an https URL (kept), or a
// bare image name in our project.
std::string ResolveImage(std::string_view project, std::string_view image);
// The project and name an image reference points to (for images.get).
std::pair<std::string, std::string> ImageProjectAndName(std::string_view project,
                                                        std::string_view image);
// A bare network name becomes "global/networks/<name>"; paths and URLs are kept.
std::string ResolveNetwork(std::string_view network);
// As CAA: paths and URLs are kept, a bare name becomes
// "projects/<p>/regions/<region of zone>/subnetworks/<name>".
std::string ResolveSubnetwork(std::string_view project, std::string_view zone,
                              std::string_view subnetwork);

}  // namespace pp::providers::gcp
