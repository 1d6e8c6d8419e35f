// The aws provider's readers of EC2 and STS XML (providers/aws/ec2_xml.h): bytes from the network.
// Every reader must return a value or an error, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "providers/aws/ec2_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  std::string error;
  (void)pp::providers::aws::ParseErrorXml(xml);
  (void)pp::providers::aws::ParseInstancesXml(xml, error);
  (void)pp::providers::aws::ParseTerminateXml(xml, error);
  (void)pp::providers::aws::ParseInstanceTypesXml(xml, error);
  (void)pp::providers::aws::ParseImagesXml(xml, error);
  (void)pp::providers::aws::ParseAssumeRoleWithWebIdentityXml(xml, error);
  (void)pp::providers::aws::ParseIso8601(xml.substr(0, 40));
  return 0;
}
