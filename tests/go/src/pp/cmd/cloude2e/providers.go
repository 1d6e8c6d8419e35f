package main

import "fmt"

// providerConfig is what cloude2e needs to know of one provider: its fake, the adaptor's flags and
// environment pointing at it (CAA's names, the endpoint overrides, the fake's CA bundle), and how to
// make the fake run out of capacity for every allowed type.
type providerConfig struct {
	fake     string
	fakeArgs func(e *env) []string
	env      func(e *env) map[string]string
	args     func(e *env) []string
	// A control call that leaves no capacity for any allowed type, and the one that undoes it.
	noCapacity struct{ path, set, reset string }
	triedTypes []string // every type the StartVM error must name
	// Checks the live instances the fake reports after a StartVM (confidential, as configured).
	checkInstance func(instances []map[string]any) error
}

var configs = map[string]providerConfig{}

func init() {
	configs["azure"] = azureConfig()
}

const azureSub = "00000000-0000-0000-0000-000000000001"

func azureConfig() providerConfig {
	var c providerConfig
	c.fake = "arm_fake.py"
	c.fakeArgs = func(e *env) []string { return []string{"--provision-polls", "2", "--delete-polls", "1"} }
	c.env = func(e *env) map[string]string {
		return map[string]string{
			"AZURE_CLIENT_ID":                 "fake-client",
			"AZURE_CLIENT_SECRET":             "fake-secret",
			"AZURE_TENANT_ID":                 "fake-tenant",
			"AZURE_SUBSCRIPTION_ID":           azureSub,
			"AZURE_REGION":                    "eastus",
			"AZURE_RESOURCE_GROUP":            "peerpods-rg",
			"AZURE_SUBNET_ID":                 "/subscriptions/" + azureSub + "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/pods",
			"AZURE_IMAGE_ID":                  "/subscriptions/" + azureSub + "/resourceGroups/images-rg/providers/Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0",
			"AZURE_INSTANCE_SIZE":             "Standard_DC2as_v5",
			"AZURE_INSTANCE_SIZES":            "Standard_DC2as_v5,Standard_DC4as_v5",
			"AZURE_RESOURCE_MANAGER_ENDPOINT": e.fakeURL,
			"AZURE_RESOURCE_MANAGER_AUDIENCE": "https://management.fake.test",
			"AZURE_AUTHORITY_HOST":            e.fakeURL,
			"AZURE_CA_BUNDLE":                 e.ca,
			"AZURE_POLL_INTERVAL":             "250ms",
		}
	}
	c.args = func(e *env) []string { return nil } // no SSH key: a throwaway one, as CAA makes
	c.noCapacity.path = "/_fake/arm"
	c.noCapacity.set = `{"fail_sizes": {"Standard_DC2as_v5": "SkuNotAvailable", "Standard_DC4as_v5": "AllocationFailed"}}`
	c.noCapacity.reset = `{"fail_sizes": {}}`
	c.triedTypes = []string{"Standard_DC2as_v5", "Standard_DC4as_v5"}
	c.checkInstance = func(instances []map[string]any) error {
		for _, inst := range instances {
			if inst["size"] != "Standard_DC2as_v5" {
				return fmt.Errorf("instance %v: want the smallest allowed size Standard_DC2as_v5", inst)
			}
		}
		return nil
	}
	return c
}
