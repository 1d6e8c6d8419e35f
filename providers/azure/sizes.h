// Azure VM sizes the azure provider knows without asking the cloud: the confidential families
// (AMD SEV-SNP: DCasv5, DCadsv5, ECasv5, ECadsv5; Intel TDX: DCesv5, DCedsv5, ECesv5, ECedsv5) and
// the confidential H100 GPU size NCCads_H100_v5, with their vCPUs, memory and GPUs (Microsoft
// Learn, "DCasv5 and DCadsv5-series", "ECasv5 and ECadsv5-series", "DCesv5 and DCedsv5-series",
// "ECesv5 and ECedsv5-series", "NCCadsH100v5-series"). Instance-type selection reads them; a size
// not in the table can still be named (AZURE_INSTANCE_SIZE, the machine_type annotation), and is
// then sized by the vmSizes API when the provider asks (ParseVmSizes).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/instance_types.h"

namespace pp::providers::azure {

// Every size of the table.
const std::vector<InstanceType>& KnownSizes();

// The table's entry for `name` (case-insensitive, as ARM compares size names).
std::optional<InstanceType> FindKnownSize(std::string_view name);

// GET .../locations/{region}/vmSizes: {"value": [{"name", "numberOfCores", "memoryInMB"}]}. Entries
// without a name or numbers are skipped; false only when the body is not such a document.
bool ParseVmSizes(std::string_view body, std::vector<InstanceType>& out);

}  // namespace pp::providers::azure
