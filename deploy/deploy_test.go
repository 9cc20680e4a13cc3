package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// unmarshalStrict decodes YAML as the API server decodes a strict
// request: keys case-sensitive, no unknown or duplicate field.
func unmarshalStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := json.UnmarshalStrict(j, obj, json.DisallowDuplicateFields, json.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// cert-manager.io/v1 and monitoring.coreos.com/v1 objects, with the fields
// their documentation (the CRDs' API references) gives, so that strict
// decoding refuses any other.

// Certificate is cert-manager's Certificate.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName     string   `json:"secretName"`
		CommonName     string   `json:"commonName,omitempty"`
		DNSNames       []string `json:"dnsNames,omitempty"`
		IPAddresses    []string `json:"ipAddresses,omitempty"`
		URIs           []string `json:"uris,omitempty"`
		EmailAddresses []string `json:"emailAddresses,omitempty"`
		Duration       string   `json:"duration,omitempty"`
		RenewBefore    string   `json:"renewBefore,omitempty"`
		IsCA           bool     `json:"isCA,omitempty"`
		Usages         []string `json:"usages,omitempty"`
		PrivateKey     *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// Issuer is cert-manager's Issuer (the kinds of issuer kanon's base uses).
type Issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct {
			CRLDistributionPoints []string `json:"crlDistributionPoints,omitempty"`
		} `json:"selfSigned,omitempty"`
		CA *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// ServiceMonitor is the Prometheus operator's ServiceMonitor.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string                `json:"jobLabel,omitempty"`
		Selector          *metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port,omitempty"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
			TLSConfig     *struct {
				ServerName         string `json:"serverName,omitempty"`
				InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
				CA                 *struct {
					Secret    *corev1.SecretKeySelector    `json:"secret,omitempty"`
					ConfigMap *corev1.ConfigMapKeySelector `json:"configMap,omitempty"`
				} `json:"ca,omitempty"`
			} `json:"tlsConfig,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kubeconfig is kube-apiserver's webhook configuration file (client-go's
// clientcmd v1 Config, the fields the webhook backend reads).
type kubeconfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Clusters   []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority,omitempty"`
			CertificateAuthorityData string `json:"certificate-authority-data,omitempty"`
			TLSServerName            string `json:"tls-server-name,omitempty"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			ClientCertificate string `json:"client-certificate,omitempty"`
			ClientKey         string `json:"client-key,omitempty"`
			Token             string `json:"token,omitempty"`
			TokenFile         string `json:"tokenFile,omitempty"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
	CurrentContext string `json:"current-context"`
}

// objects are the decoded objects of a rendering, by kind and name.
type objects map[string]map[string]any

func (o objects) get(kind, name string) any { return o[kind][name] }

// decode decodes one object strictly into its API type by apiVersion and
// kind, and checks what each type requires.
func decode(t *testing.T, doc []byte) (kind, name string, obj any) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("not an object: %v\n%s", err, doc)
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/Namespace":
		obj = &corev1.Namespace{}
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	case "v1/PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	case "apps/v1/StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "networking.k8s.io/v1/NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "policy/v1/PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "cert-manager.io/v1/Certificate":
		obj = &Certificate{}
	case "cert-manager.io/v1/Issuer":
		obj = &Issuer{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		obj = &ServiceMonitor{}
	default:
		t.Fatalf("object of an unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := unmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %v\n%s", tm.Kind, err, doc)
	}
	meta := obj.(metav1.Object)
	if meta.GetName() == "" {
		t.Fatalf("%s without a name", tm.Kind)
	}
	check(t, tm.Kind+" "+meta.GetName(), obj)
	return tm.Kind, meta.GetName(), obj
}

// check verifies what the CRDs' documentation requires, and a few things
// the API server would refuse.
func check(t *testing.T, what string, obj any) {
	t.Helper()
	fail := func(format string, args ...any) { t.Errorf(what+": "+format, args...) }
	dur := func(field, s string) {
		if s == "" {
			return
		}
		if d, err := time.ParseDuration(s); err != nil || d <= 0 {
			fail("%s %q is not a positive duration", field, s)
		}
	}
	switch o := obj.(type) {
	case *Certificate:
		s := o.Spec
		if s.SecretName == "" || s.IssuerRef.Name == "" {
			fail("secretName and issuerRef.name are required")
		}
		if s.CommonName == "" && len(s.DNSNames)+len(s.IPAddresses)+len(s.URIs)+len(s.EmailAddresses) == 0 {
			fail("needs a commonName or subject alternative names")
		}
		for _, ip := range s.IPAddresses {
			if net.ParseIP(ip) == nil {
				fail("ipAddresses: %q is not an IP address", ip)
			}
		}
		dur("duration", s.Duration)
		dur("renewBefore", s.RenewBefore)
		known := []string{"signing", "digital signature", "content commitment", "key encipherment", "key agreement", "data encipherment",
			"cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth", "client auth", "code signing",
			"email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"}
		for _, u := range s.Usages {
			if !slices.Contains(known, u) {
				fail("usage %q is not one of cert-manager's", u)
			}
		}
		if k := s.PrivateKey; k != nil {
			if !slices.Contains([]string{"", "RSA", "ECDSA", "Ed25519"}, k.Algorithm) || !slices.Contains([]string{"", "Never", "Always"}, k.RotationPolicy) {
				fail("privateKey %+v", *k)
			}
			if k.Algorithm == "ECDSA" && !slices.Contains([]int{0, 256, 384, 521}, k.Size) {
				fail("ECDSA key size %d", k.Size)
			}
		}
		if g := s.IssuerRef.Group; g != "" && g != "cert-manager.io" || !slices.Contains([]string{"", "Issuer", "ClusterIssuer"}, s.IssuerRef.Kind) {
			fail("issuerRef %+v", s.IssuerRef)
		}
	case *Issuer:
		n := 0
		if o.Spec.SelfSigned != nil {
			n++
		}
		if o.Spec.CA != nil {
			n++
			if o.Spec.CA.SecretName == "" {
				fail("ca.secretName is required")
			}
		}
		if n != 1 {
			fail("an issuer is of exactly one type, not %d", n)
		}
	case *ServiceMonitor:
		if o.Spec.Selector == nil {
			fail("selector is required")
		} else if _, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err != nil {
			fail("selector: %v", err)
		}
		if len(o.Spec.Endpoints) == 0 {
			fail("no endpoint")
		}
		for _, e := range o.Spec.Endpoints {
			if e.Port == "" || !slices.Contains([]string{"", "http", "https"}, e.Scheme) {
				fail("endpoint %+v", e)
			}
			dur("interval", e.Interval)
			dur("scrapeTimeout", e.ScrapeTimeout)
		}
	}
}

// render builds the kustomization in dir as `kubectl kustomize` does and
// decodes every object.
func render(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := objects{}
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind, name, obj := decode(t, doc)
		if objs[kind] == nil {
			objs[kind] = map[string]any{}
		}
		if objs[kind][name] != nil {
			t.Fatalf("two %s named %s", kind, name)
		}
		objs[kind][name] = obj
	}
	return objs
}

func selects(t *testing.T, what string, sel *metav1.LabelSelector, lbls map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(lbls)) {
		t.Errorf("%s: selector %v does not select %v (%v)", what, sel, lbls, err)
	}
}

// The kustomize base renders, every object decodes strictly into its API
// type, and the objects fit together: selectors select the pods, the
// Secret the StatefulSet mounts (as a directory, so that renewals reach
// kanon) is the serving Certificate's, whose addresses hold the Service's
// ClusterIP that the webhook kubeconfig names; the ServiceMonitor scrapes
// the Service's port with the CA of that Secret; the configuration's
// files are in the mounts; the grace period outlasts the shutdown timeout;
// the audit policy and kubeconfig shipped to the control plane are
// deploy/'s, and decode strictly as kube-apiserver reads them.
func TestKustomizeBase(t *testing.T) {
	o := render(t, "kustomize")
	for kind, byName := range o {
		for name, obj := range byName {
			if ns := obj.(metav1.Object).GetNamespace(); kind != "Namespace" && ns != "kanon" {
				t.Errorf("%s %s in namespace %q, want kanon", kind, name, ns)
			}
		}
	}
	for _, want := range []string{"Namespace", "ServiceAccount", "StatefulSet", "Service", "ConfigMap", "Certificate", "Issuer",
		"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"} {
		if len(o[want]) == 0 {
			t.Errorf("no %s", want)
		}
	}
	sts, _ := o.get("StatefulSet", "kanon").(*appsv1.StatefulSet)
	if sts == nil {
		t.Fatal("no StatefulSet kanon")
	}
	pod := sts.Spec.Template
	selects(t, "StatefulSet", sts.Spec.Selector, pod.Labels)
	if *sts.Spec.Replicas != 1 {
		t.Errorf("%d replicas: the bolt store has one writer", *sts.Spec.Replicas)
	}
	if o.get("Service", sts.Spec.ServiceName) == nil || o.get("Service", sts.Spec.ServiceName).(*corev1.Service).Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the StatefulSet's serviceName %q is not a headless Service", sts.Spec.ServiceName)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("volume claim templates %v", sts.Spec.VolumeClaimTemplates)
	}
	c := pod.Spec.Containers[0]
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		vols[vct.Name] = corev1.Volume{Name: vct.Name}
	}
	for name := range mounts {
		if _, ok := vols[name]; !ok {
			t.Errorf("mount %s of no volume", name)
		}
	}
	// The configuration: a generated ConfigMap, its files in the mounts.
	cmName := vols["config"].ConfigMap.Name
	cm, _ := o.get("ConfigMap", cmName).(*corev1.ConfigMap)
	if cm == nil || !strings.HasPrefix(cmName, "kanon-config-") {
		t.Fatalf("the config volume's ConfigMap %q is not the generated one", cmName)
	}
	var conf struct {
		TLS struct {
			CertFile     string `json:"cert_file"`
			KeyFile      string `json:"key_file"`
			ClientCAFile string `json:"client_ca_file"`
		} `json:"tls"`
		StateDir        string `json:"state_dir"`
		ShutdownTimeout string `json:"shutdown_timeout"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["kanon.yaml"]), &conf); err != nil {
		t.Fatal(err)
	}
	if want := mounts["config"].MountPath + "/kanon.yaml"; !slices.Contains(c.Args, want) {
		t.Errorf("args %v do not name %s", c.Args, want)
	}
	tlsMount := mounts["tls"]
	if tlsMount.SubPath != "" {
		t.Error("the TLS Secret is mounted with subPath: the kubelet never updates such a mount")
	}
	for _, f := range []string{conf.TLS.CertFile, conf.TLS.KeyFile, conf.TLS.ClientCAFile} {
		if filepath.Dir(f) != tlsMount.MountPath {
			t.Errorf("%s is not in the TLS mount %s", f, tlsMount.MountPath)
		}
	}
	if conf.StateDir != mounts["state"].MountPath {
		t.Errorf("state_dir %s is not the state volume's mount %s", conf.StateDir, mounts["state"].MountPath)
	}
	if d, err := time.ParseDuration(conf.ShutdownTimeout); err != nil || time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second <= d {
		t.Errorf("terminationGracePeriodSeconds %d does not outlast shutdown_timeout %s", *pod.Spec.TerminationGracePeriodSeconds, conf.ShutdownTimeout)
	}
	// Certificates.
	secret := vols["tls"].Secret.SecretName
	var serving *Certificate
	for _, x := range o["Certificate"] {
		if cert := x.(*Certificate); cert.Spec.SecretName == secret {
			serving = cert
		}
		cert := x.(*Certificate)
		if iss, _ := o.get("Issuer", cert.Spec.IssuerRef.Name).(*Issuer); iss == nil {
			t.Errorf("Certificate %s: no Issuer %s", cert.Name, cert.Spec.IssuerRef.Name)
		}
	}
	if serving == nil {
		t.Fatalf("no Certificate writes the Secret %s the StatefulSet mounts", secret)
	}
	svc, _ := o.get("Service", "kanon").(*corev1.Service)
	if svc == nil {
		t.Fatal("no Service kanon")
	}
	selects(t, "Service kanon", &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels)
	if !slices.Contains(serving.Spec.IPAddresses, svc.Spec.ClusterIP) {
		t.Errorf("the serving certificate's addresses %v lack the ClusterIP %s", serving.Spec.IPAddresses, svc.Spec.ClusterIP)
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.StrVal != c.Ports[0].Name {
			t.Errorf("Service port %s targets %v, not the container's %s", p.Name, p.TargetPort, c.Ports[0].Name)
		}
	}
	// Monitoring, network policy, disruption budget.
	sm := o.get("ServiceMonitor", "kanon").(*ServiceMonitor)
	selects(t, "ServiceMonitor", sm.Spec.Selector, svc.Labels)
	ep := sm.Spec.Endpoints[0]
	if ep.Port != svc.Spec.Ports[0].Name || ep.TLSConfig == nil || ep.TLSConfig.CA.Secret.Name != secret {
		t.Errorf("ServiceMonitor endpoint %+v: want port %s over TLS with the CA of %s", ep, svc.Spec.Ports[0].Name, secret)
	}
	if !slices.Contains(serving.Spec.DNSNames, ep.TLSConfig.ServerName) {
		t.Errorf("the ServiceMonitor checks the name %s, not in the certificate's %v", ep.TLSConfig.ServerName, serving.Spec.DNSNames)
	}
	np := o.get("NetworkPolicy", "kanon").(*networkingv1.NetworkPolicy)
	selects(t, "NetworkPolicy", &np.Spec.PodSelector, pod.Labels)
	if p := np.Spec.Ingress[0].Ports[0].Port; p == nil || p.StrVal != c.Ports[0].Name {
		t.Errorf("the NetworkPolicy opens port %v, not %s", p, c.Ports[0].Name)
	}
	pdb := o.get("PodDisruptionBudget", "kanon").(*policyv1.PodDisruptionBudget)
	selects(t, "PodDisruptionBudget", pdb.Spec.Selector, pod.Labels)
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= int(*sts.Spec.Replicas) {
		t.Error("the PodDisruptionBudget blocks every eviction of the one replica")
	}
	// The control plane's files.
	var files *corev1.ConfigMap
	for name, x := range o["ConfigMap"] {
		if strings.HasPrefix(name, "kanon-apiserver-files-") {
			files = x.(*corev1.ConfigMap)
		}
	}
	if files == nil {
		t.Fatal("no ConfigMap of the control plane's files")
	}
	for _, f := range []string{"audit-policy.yaml", "audit-webhook-kubeconfig.yaml"} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if files.Data[f] != string(want) {
			t.Errorf("the base's %s is not deploy/%s: copy it again", f, f)
		}
	}
	kc := checkAPIServerFiles(t, []byte(files.Data["audit-policy.yaml"]), []byte(files.Data["audit-webhook-kubeconfig.yaml"]))
	u, err := url.Parse(kc.Clusters[0].Cluster.Server)
	if err != nil || u.Hostname() != svc.Spec.ClusterIP || u.Port() != fmt.Sprint(svc.Spec.Ports[0].Port) || !strings.HasPrefix(u.Path, "/audit/") {
		t.Errorf("the webhook kubeconfig's server %s is not https://%s:%d/audit/CLUSTER", kc.Clusters[0].Cluster.Server, svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	}
}

// checkAPIServerFiles decodes the audit policy and the webhook kubeconfig
// strictly, as kube-apiserver reads them.
func checkAPIServerFiles(t *testing.T, policy, kubecfg []byte) *kubeconfig {
	t.Helper()
	var p auditv1.Policy
	if err := unmarshalStrict(policy, &p); err != nil {
		t.Fatalf("audit policy: %v", err)
	}
	if p.APIVersion != "audit.k8s.io/v1" || p.Kind != "Policy" || len(p.Rules) == 0 {
		t.Fatalf("audit policy %s %s with %d rules", p.APIVersion, p.Kind, len(p.Rules))
	}
	levels := []auditv1.Level{auditv1.LevelNone, auditv1.LevelMetadata, auditv1.LevelRequest, auditv1.LevelRequestResponse}
	for i, r := range p.Rules {
		if !slices.Contains(levels, r.Level) {
			t.Errorf("audit policy rule %d: level %q", i, r.Level)
		}
	}
	var kc kubeconfig
	if err := unmarshalStrict(kubecfg, &kc); err != nil {
		t.Fatalf("webhook kubeconfig: %v", err)
	}
	if kc.Kind != "Config" || len(kc.Clusters) == 0 || len(kc.Users) == 0 || len(kc.Contexts) == 0 {
		t.Fatalf("webhook kubeconfig %+v", kc)
	}
	ctx := slices.IndexFunc(kc.Contexts, func(c struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	}) bool {
		return c.Name == kc.CurrentContext
	})
	if ctx < 0 || kc.Contexts[ctx].Context.Cluster != kc.Clusters[0].Name || kc.Contexts[ctx].Context.User != kc.Users[0].Name {
		t.Fatalf("webhook kubeconfig: current context %q does not join its cluster and user", kc.CurrentContext)
	}
	return &kc
}

// The plain manifests of deploy/kubernetes decode strictly too, and the
// control plane's files beside them.
func TestPlainManifests(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) > 0 {
				decode(t, doc)
			}
		}
	}
	policy, _ := os.ReadFile("audit-policy.yaml")
	kubecfg, _ := os.ReadFile("audit-webhook-kubeconfig.yaml")
	checkAPIServerFiles(t, policy, kubecfg)
}
