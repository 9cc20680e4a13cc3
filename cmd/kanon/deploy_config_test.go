package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// The configurations deploy/ ships — the kustomize base's kanon.yaml, the
// replicas overlay's (on Redis) and the one in the plain manifests'
// ConfigMap — load and validate as kanon serve --check would (every key
// known, every value valid; the files they name exist only in the pod).
func TestDeployConfigurations(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	b, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "kanon.yaml")
	if err := os.WriteFile(plain, []byte(cm.Data["kanon.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"../../deploy/kustomize/kanon.yaml", "../../deploy/kustomize-replicas/kanon.yaml", plain} {
		c, err := loadServeConfig(path, pflag.NewFlagSet("serve", pflag.ContinueOnError), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := c.validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if c.TLS.ClientCAFile == "" || c.Listen == "" {
			t.Fatalf("%s: no HTTPS webhook with client certificates", path)
		}
	}
}
