// The test-only ttrpctest.Test/Echo service (tests/proto/ttrpctest.proto), on our ttrpc server.
#pragma once

#include "common/ttrpc/server.h"

namespace pp::testing {

void RegisterEchoService(ttrpc::Server& server);

}  // namespace pp::testing
