// process-user-data: in the pod VM, turns the VM's cloud-config user-data into the allow-listed
// files under /run/peerpod (apf.json, initdata and what it yields, auth.json, ...).
#include "common/base/log.h"
#include "forwarder/process_user_data_cli.h"

int main(int argc, char** argv) {
  pp::ConfigureLogging("info", "text");  // logs on stderr, like every binary of the project
  return pp::forwarder::ProcessUserDataMain(argc, argv);
}
