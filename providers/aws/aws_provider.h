// The aws provider: one EC2 instance per pod VM through the EC2 Query API (no SDK), signed with
// SigV4, over the shared libcurl client.
//
// CreateInstance picks instance types with SelectInstanceTypes (the table's vCPUs, memory and GPUs
// come from DescribeInstanceTypes of the allowed types) and runs RunInstances with the first
// candidate; when EC2 is out of capacity for it (InsufficientInstanceCapacity and kin) it tries the
// next, and its error names every type it tried. Each candidate's ClientToken is made once and
// reused by every retry, so a retried RunInstances never launches twice. The instance gets
// CpuOptions.AmdSevSnp=enabled unless DISABLECVM, IMDSv2-only metadata, user-data (base64), and the
// tags Name=<name>, peerpods.node=<owner node>, peerpods.sandbox=<sandbox id> plus TAGS. The wait
// for running and an address goes through one BatchPoller (DescribeInstances with up to 1000 ids a
// call) shared by every CreateInstance of the provider. An instance that stops on the way
// (shutting-down, terminated), or that is not running with an address by the deadline, is
// terminated before the call returns.
//
// ListInstances: DescribeInstances filtered by tag:peerpods.node and the live states (pending,
// running, stopping, stopped), paginated. DeleteInstance: TerminateInstances (an unknown id is
// success). DeleteLeftovers: the live instances tagged with that Name and owner, terminated.
// Verify: DescribeInstanceTypes of the configured types and DescribeImages of the image.
//
// A RunInstances whose outcome is unknown (timeout, 5xx or unreadable answers to the end) is
// followed by a lookup of its ClientToken (Filter client-token) and the termination of whatever
// it launched; one EC2 launched after we stopped listening is found later by DeleteLeftovers.
// User-data past EC2's 16 KiB is refused before any call. The root volume is resized to
// ROOT_VOLUME_SIZE (at least the image's own size) on the device DescribeImages names.
#pragma once

#include <memory>

#include "providers/aws/factory.h"
#include "providers/provider.h"

namespace pp::providers::aws {

// Fails with INVALID_ARGUMENT when ValidateConfig does. Talks to no endpoint: credentials, types
// and image are fetched by the first call that needs them.
Result<std::unique_ptr<Provider>> MakeAwsProvider(AwsConfig config);

}  // namespace pp::providers::aws
