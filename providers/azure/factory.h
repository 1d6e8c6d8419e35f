// The azure provider's command line: cloud-api-adaptor's flags and environment names
// (src/cloud-providers/azure/manager.go) plus the endpoints, CA bundle and polling knobs this
// implementation adds, and the factory registered as "azure".
#pragma once

#include <memory>

#include "providers/provider.h"

namespace pp::providers::azure {

std::unique_ptr<ProviderFactory> MakeAzureFactory();

}  // namespace pp::providers::azure
