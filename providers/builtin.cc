#include "providers/provider.h"

#ifdef PP_PROVIDER_LIBVIRT
#include "providers/libvirt/libvirt_provider.h"
#endif
#ifdef PP_PROVIDER_GCP
#include "providers/gcp/gcp_provider.h"
#endif
#ifdef PP_PROVIDER_AWS
#include "providers/aws/factory.h"
#endif
#ifdef PP_PROVIDER_AZURE
#include "providers/azure/factory.h"
#endif

namespace pp::providers {

// Each provider folder adds itself here behind its CMake option (PP_PROVIDER_*).
void RegisterBuiltinProviders(Registry& registry) {
#ifdef PP_PROVIDER_LIBVIRT
  (void)registry.Add(libvirt::MakeLibvirtFactory());
#endif
#ifdef PP_PROVIDER_GCP
  (void)registry.Add(gcp::MakeGcpFactory());
#endif
#ifdef PP_PROVIDER_AWS
  (void)registry.Add(aws::MakeAwsFactory());
#endif
#ifdef PP_PROVIDER_AZURE
  (void)registry.Add(azure::MakeAzureFactory());
#endif
  (void)registry;
}

}  // namespace pp::providers
