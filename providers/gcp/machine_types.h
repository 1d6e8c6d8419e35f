// Shapes of the machine types a pod VM is likely to use, so that instance-type selection works
// without a machineTypes.get per type at start (CAA makes one per allowed type). Types not known
// here are asked of the API (machineTypes.get) the first time they are needed.
// Sources: https://cloud.google.com/compute/docs/general-purpose-machines (E2, N2D, N2, C3, C3D,
// C2D, N1) and https://cloud.google.com/compute/docs/gpus#h100-gpus (A3: H100 80GB).
#pragma once

#include <optional>
#include <string_view>

#include "providers/instance_types.h"

namespace pp::providers::gcp {

// vCPUs, memory (MiB; Google's "GB" in these tables is GiB) and GPUs of a predefined machine type,
// or nullopt when the name is not one of the series above.
std::optional<InstanceType> KnownMachineType(std::string_view name);

}  // namespace pp::providers::gcp
