package deploy

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The replicas overlay renders, every object decodes strictly, and it is
// what README's "Scale out" says: a Deployment of 3 replicas (no bolt
// StatefulSet left), each named after its pod (--replica from the
// downward API), ready only while /readyz says so, on the Redis store
// that the trial Redis serves (its Service, port and pods, reachable from
// kanon's pods only); the Service, the ServiceMonitor (/metrics on the
// Service's port) and the disruption budget select the replicas and not
// Redis.
func TestKustomizeReplicas(t *testing.T) {
	o := render(t, "kustomize-replicas")
	if len(o["StatefulSet"]) != 1 || o.get("StatefulSet", "kanon") != nil || o.get("Service", "kanon-headless") != nil {
		t.Errorf("the bolt StatefulSet and its headless Service are still there: %v", o["StatefulSet"])
	}
	dep, _ := o.get("Deployment", "kanon").(*appsv1.Deployment)
	if dep == nil {
		t.Fatal("no Deployment kanon")
	}
	pod := dep.Spec.Template
	selects(t, "Deployment", dep.Spec.Selector, pod.Labels)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
	}
	c := pod.Spec.Containers[0]
	if i := slices.Index(c.Args, "--replica"); i < 0 || i+1 == len(c.Args) || c.Args[i+1] != "$(POD_NAME)" {
		t.Errorf("args %v: want --replica $(POD_NAME)", c.Args)
	}
	podName, memLimit := false, false
	for _, e := range c.Env {
		if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			podName = true
		}
		if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" {
			memLimit = c.Resources.Limits.Memory() != nil && !c.Resources.Limits.Memory().IsZero()
		}
	}
	if !podName {
		t.Errorf("env %v: no POD_NAME from metadata.name", c.Env)
	}
	if !memLimit {
		t.Errorf("env %v: no GOMEMLIMIT from the container's memory limit (%v)", c.Env, c.Resources.Limits)
	}
	rp := c.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || rp.HTTPGet.Port.StrVal != c.Ports[0].Name || rp.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe %+v: want HTTPS /readyz on port %s", rp, c.Ports[0].Name)
	}

	// The configuration: the generated ConfigMap the pods mount, with the
	// Redis store of the trial Redis.
	var cmName string
	for _, v := range pod.Spec.Volumes {
		if v.Name == "config" && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm, _ := o.get("ConfigMap", cmName).(*corev1.ConfigMap)
	if cm == nil || !strings.HasPrefix(cmName, "kanon-config-") {
		t.Fatalf("the config volume's ConfigMap %q is not the generated one", cmName)
	}
	var conf struct {
		Store string `json:"store"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["kanon.yaml"]), &conf); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(conf.Store)
	if err != nil || u.Scheme != "redis" {
		t.Fatalf("store %q is not a redis:// URL (%v)", conf.Store, err)
	}
	redisSvc, _ := o.get("Service", "kanon-redis").(*corev1.Service)
	redis, _ := o.get("StatefulSet", "kanon-redis").(*appsv1.StatefulSet)
	if redisSvc == nil || redis == nil {
		t.Fatal("no Redis StatefulSet and Service kanon-redis")
	}
	if u.Hostname() != "kanon-redis.kanon.svc" || u.Port() != "6379" || redisSvc.Spec.Ports[0].Port != 6379 {
		t.Errorf("store %s is not the Service kanon-redis (port %d)", conf.Store, redisSvc.Spec.Ports[0].Port)
	}
	selects(t, "Service kanon-redis", &metav1.LabelSelector{MatchLabels: redisSvc.Spec.Selector}, redis.Spec.Template.Labels)
	if redisSvc.Spec.Ports[0].TargetPort.StrVal != redis.Spec.Template.Spec.Containers[0].Ports[0].Name {
		t.Errorf("Service kanon-redis targets %v", redisSvc.Spec.Ports[0].TargetPort)
	}
	np := o.get("NetworkPolicy", "kanon-redis").(*networkingv1.NetworkPolicy)
	selects(t, "NetworkPolicy kanon-redis", &np.Spec.PodSelector, redis.Spec.Template.Labels)
	selects(t, "NetworkPolicy kanon-redis ingress", np.Spec.Ingress[0].From[0].PodSelector, pod.Labels)

	// The webhook's Service, the ServiceMonitor and the budget take the
	// replicas, not Redis.
	svc := o.get("Service", "kanon").(*corev1.Service)
	sm := o.get("ServiceMonitor", "kanon").(*ServiceMonitor)
	pdb := o.get("PodDisruptionBudget", "kanon").(*policyv1.PodDisruptionBudget)
	for what, sel := range map[string]*metav1.LabelSelector{"Service kanon": {MatchLabels: svc.Spec.Selector}, "PodDisruptionBudget": pdb.Spec.Selector} {
		selects(t, what, sel, pod.Labels)
		if s, _ := metav1.LabelSelectorAsSelector(sel); s.Matches(labels.Set(redis.Spec.Template.Labels)) {
			t.Errorf("%s selects the Redis pod", what)
		}
	}
	selects(t, "ServiceMonitor", sm.Spec.Selector, svc.Labels)
	ep := sm.Spec.Endpoints[0]
	if ep.Port != svc.Spec.Ports[0].Name || ep.Path != "/metrics" || svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name {
		t.Errorf("ServiceMonitor endpoint %+v: want /metrics on the Service's port %s (the pods' %s)", ep, svc.Spec.Ports[0].Name, c.Ports[0].Name)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() >= int(*dep.Spec.Replicas) {
		t.Errorf("the PodDisruptionBudget %v lets every replica go at once", pdb.Spec.MaxUnavailable)
	}
}
