package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The request and response bodies of Request and RequestResponse events.
// They are the upstream API types marshalled with encoding/json, as the
// apiserver's JSON serializer writes them, and wrapped in runtime.Unknown as
// the audit event carries them.

// rawObject marshals v into a runtime.Unknown. The values marshalled here are
// built by this package from plain types and cannot fail to marshal.
func rawObject(v any) *runtime.Unknown {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal generated %T: %v", v, err))
	}
	return &runtime.Unknown{Raw: b, ContentType: runtime.ContentTypeJSON}
}

func fieldsV1(s string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(s)} }

func managed(manager string, op metav1.ManagedFieldsOperationType, apiVersion string, at time.Time, fields, subresource string) metav1.ManagedFieldsEntry {
	t := metav1.NewTime(at.Add(-time.Duration(at.UnixNano() % int64(time.Hour))).Truncate(time.Second))
	return metav1.ManagedFieldsEntry{
		Manager: manager, Operation: op, APIVersion: apiVersion, Time: &t,
		FieldsType: "FieldsV1", FieldsV1: fieldsV1(fields), Subresource: subresource,
	}
}

func ptr[T any](v T) *T { return &v }

// lease is a coordination.k8s.io/v1 Lease renewed at now.
func lease(r *rand.Rand, namespace, name, uid, rv, holder, manager string, duration int32, now time.Time) *coordinationv1.Lease {
	created := metav1.NewTime(now.Add(-time.Duration(24+r.IntN(2000)) * time.Hour).Truncate(time.Second))
	acquire := metav1.NewMicroTime(now.Add(-time.Duration(r.IntN(86400)) * time.Second))
	renew := metav1.NewMicroTime(now)
	l := &coordinationv1.Lease{
		TypeMeta: metav1.TypeMeta{Kind: "Lease", APIVersion: "coordination.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace, UID: types.UID(uid), ResourceVersion: rv,
			CreationTimestamp: created,
			ManagedFields: []metav1.ManagedFieldsEntry{managed(manager, metav1.ManagedFieldsOperationUpdate, "coordination.k8s.io/v1", now,
				`{"f:spec":{"f:acquireTime":{},"f:holderIdentity":{},"f:leaseDurationSeconds":{},"f:leaseTransitions":{},"f:renewTime":{}}}`, "")},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr(holder),
			LeaseDurationSeconds: ptr(duration),
			RenewTime:            &renew,
		},
	}
	if namespace == "kube-system" {
		l.Spec.AcquireTime = &acquire
		l.Spec.LeaseTransitions = ptr(int32(r.IntN(30)))
	} else {
		// Node leases are owned by their Node.
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: types.UID(uid)}}
	}
	return l
}

func hex(r *rand.Rand, n int) string { return randString(r, n, "0123456789abcdef") }

// podObject is a Pod of app a. With status it is the object a get or a
// delete returns: status, node, and the managedFields of every writer.
func podObject(r *rand.Rand, c *cluster, a *app, p *pod, rv string, now time.Time, status bool) *corev1.Pod {
	created := now.Add(-time.Duration(60+r.IntN(86400*7)) * time.Second).Truncate(time.Second)
	labels := map[string]string{
		"app.kubernetes.io/name":     a.name,
		"app.kubernetes.io/instance": a.name + "-" + a.namespace,
		"pod-template-hash":          a.rsHash,
	}
	apiAccess := "kube-api-access-" + randString(r, 5, nameAlphabet)
	container := corev1.Container{
		Name:  "app",
		Image: a.image,
		Args:  []string{"--config=/etc/" + a.name + "/config.yaml", "--log-format=json", `--banner=Welcome to "` + a.name + `" <prod> & friends`},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "GOMAXPROCS", Value: "2"},
			{Name: "GREETING", Value: "Grüße aus Köln — ✓"},
		},
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: "/etc/" + a.name, ReadOnly: true},
			{Name: apiAccess, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		},
		LivenessProbe:            &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}}, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3},
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		SecurityContext:          &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true), RunAsNonRoot: ptr(true)},
	}
	pd := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.name, GenerateName: a.name + "-" + a.rsHash + "-", Namespace: a.namespace,
			Labels:      labels,
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": created.Add(-time.Hour).Format(time.RFC3339), "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: a.name + "-" + a.rsHash, UID: types.UID(newUUID(r)),
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: a.name + "-config"}, DefaultMode: ptr(int32(420))}}},
				{Name: apiAccess, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(3607)), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					},
					DefaultMode: ptr(int32(420)),
				}}},
			},
			Containers:                    []corev1.Container{container},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            a.serviceAccount,
			SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr(int64(65534))},
			SchedulerName:                 "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			},
			Priority:           ptr(int32(0)),
			EnableServiceLinks: ptr(true),
			PreemptionPolicy:   ptr(corev1.PreemptLowerPriority),
		},
	}
	if !status {
		return pd
	}
	n := c.nodes[p.node]
	pd.UID = types.UID(p.uid)
	pd.ResourceVersion = rv
	pd.CreationTimestamp = metav1.NewTime(created)
	pd.Spec.NodeName = n.name
	pd.ManagedFields = []metav1.ManagedFieldsEntry{
		managed("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "v1", created,
			`{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app.kubernetes.io/instance":{},"f:app.kubernetes.io/name":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"`+string(pd.OwnerReferences[0].UID)+`\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:args":{},"f:env":{".":{},"k:{\"name\":\"GOMAXPROCS\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{".":{},"f:limits":{".":{},"f:memory":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:serviceAccountName":{}}}`, ""),
		managed("kubelet", metav1.ManagedFieldsOperationUpdate, "v1", now,
			`{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"`+p.ip+`\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`, "status"),
	}
	started := metav1.NewTime(created.Add(3 * time.Second))
	pd.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created.Add(time.Second))},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created)},
		},
		HostIP:    n.ip,
		HostIPs:   []corev1.HostIP{{IP: n.ip}},
		PodIP:     p.ip,
		PodIPs:    []corev1.PodIP{{IP: p.ip}},
		StartTime: &started,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:         "app",
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
			Ready:        true,
			RestartCount: int32(r.IntN(3)),
			Image:        a.image,
			ImageID:      a.image[:strings.LastIndexByte(a.image, ':')] + "@sha256:" + hex(r, 64),
			ContainerID:  "containerd://" + hex(r, 64),
			Started:      ptr(true),
		}},
		QOSClass: corev1.PodQOSBurstable,
	}
	return pd
}

// configData is ConfigMap content with the characters that make JSON
// escaping matter: quotes, backslashes, <, >, &, tabs, newlines, non-ASCII.
var configData = []struct{ key, text string }{
	{"nginx.conf", "server {\n\tlisten 8080;\n\tlocation /healthz { return 200 \"ok\"; }\n\tlocation / { proxy_pass http://backend; add_header X-Frame-Options \"DENY\"; }\n}\n"},
	{"maintenance.html", "<html><body><h1>Maintenance &amp; upgrades</h1><p>We'll be back soon — “merci” ✓</p></body></html>\n"},
	{"flags.json", "{\"featureFlags\":{\"newCheckout\":true,\"regions\":[\"eu-west-1\",\"us-east-1\"]},\"motd\":\"Grüße, 世界!\"}\n"},
	{"logging.conf", "log_format main '$remote_addr - $remote_user [$time_local] \"$request\" $status';\npath: C:\\Program Files\\app\\conf\n"},
	{"alerts.yaml", "groups:\n- name: latency\n  rules:\n  - alert: HighLatency\n    expr: histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m])) > 0.5 && up == 1\n    annotations:\n      summary: \"p99 > 500ms on {{ $labels.instance }}\"\n"},
}

// configMap builds a ConfigMap of roughly size bytes of data.
func configMap(r *rand.Rand, namespace, name, uid, rv string, size int, now time.Time, manager string) *corev1.ConfigMap {
	data := map[string]string{}
	total := 0
	for i := 0; total < size; i++ {
		var sb strings.Builder
		chunk := configData[r.IntN(len(configData))]
		for sb.Len() < min(size-total, 1500) {
			sb.WriteString(chunk.text)
		}
		key := chunk.key
		if _, dup := data[key]; dup {
			key = fmt.Sprintf("%d-%s", i, key)
		}
		data[key] = sb.String()
		total += sb.Len()
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": namespace, "app.kubernetes.io/managed-by": "Helm"},
		},
		Data: data,
	}
	if uid != "" {
		cm.UID = types.UID(uid)
		cm.ResourceVersion = rv
		cm.CreationTimestamp = metav1.NewTime(now.Add(-time.Duration(r.IntN(86400*30)) * time.Second).Truncate(time.Second))
		cm.ManagedFields = []metav1.ManagedFieldsEntry{managed(manager, metav1.ManagedFieldsOperationUpdate, "v1", now, `{"f:data":{},"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/managed-by":{},"f:app.kubernetes.io/part-of":{}}}}`, "")}
	}
	return cm
}

// nodeStatusPatch is the strategic merge patch a kubelet sends to
// nodes/status: heartbeat times of the conditions, and sometimes the image
// list. encoding/json sorts map keys, as the kubelet's patch does.
func nodeStatusPatch(r *rand.Rand, c *cluster, now time.Time) []byte {
	ts := now.UTC().Format(time.RFC3339)
	types := []string{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
	order := make([]map[string]any, len(types))
	conds := make([]map[string]any, len(types))
	for i, t := range types {
		order[i] = map[string]any{"type": t}
		conds[i] = map[string]any{"lastHeartbeatTime": ts, "type": t}
	}
	status := map[string]any{"$setElementOrder/conditions": order, "conditions": conds}
	if r.IntN(4) == 0 {
		var images []map[string]any
		for i, w := range workloads[:4+r.IntN(len(workloads)-4)] {
			repo := w.image[:strings.LastIndexByte(w.image, ':')]
			images = append(images, map[string]any{
				"names":     []string{repo + "@sha256:" + hex(r, 64), w.image},
				"sizeBytes": 20_000_000 + i*7_340_033 + r.IntN(1_000_000),
			})
		}
		status["images"] = images
	}
	b, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal node status patch: %v", err))
	}
	return b
}

// podStatusPatch is the kubelet's patch of pods/status after a readiness
// change.
func podStatusPatch(r *rand.Rand, a *app, p *pod, now time.Time) []byte {
	ts := now.UTC().Format(time.RFC3339)
	ready := r.IntN(3) > 0
	st := "False"
	if ready {
		st = "True"
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": p.uid},
		"status": map[string]any{
			"$setElementOrder/conditions": []map[string]any{{"type": "PodReadyToStartContainers"}, {"type": "Initialized"}, {"type": "Ready"}, {"type": "ContainersReady"}, {"type": "PodScheduled"}},
			"conditions": []map[string]any{
				{"lastTransitionTime": ts, "status": st, "type": "Ready"},
				{"lastTransitionTime": ts, "status": st, "type": "ContainersReady"},
			},
			"containerStatuses": []map[string]any{{
				"containerID":  "containerd://" + hex(r, 64),
				"image":        a.image,
				"imageID":      a.image[:strings.LastIndexByte(a.image, ':')] + "@sha256:" + hex(r, 64),
				"lastState":    map[string]any{"terminated": map[string]any{"containerID": "containerd://" + hex(r, 64), "exitCode": 137, "finishedAt": ts, "reason": "OOMKilled", "startedAt": ts}},
				"name":         "app",
				"ready":        ready,
				"restartCount": 1 + r.IntN(5),
				"started":      true,
				"state":        map[string]any{"running": map[string]any{"startedAt": ts}},
			}},
		},
	}
	b, err := json.Marshal(patch)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal pod status patch: %v", err))
	}
	return b
}

var eventReasons = []struct{ reason, typ, format string }{
	{"Pulled", "Normal", "Successfully pulled image \"%s\" in 1.042s (1.042s including waiting)"},
	{"Created", "Normal", "Created container app"},
	{"Started", "Normal", "Started container app"},
	{"Unhealthy", "Warning", "Readiness probe failed: Get \"http://%s:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"},
	{"BackOff", "Warning", "Back-off restarting failed container app in pod %s"},
}

// eventObject is a core/v1 Event about pod p, reported by the kubelet.
func eventObject(r *rand.Rand, c *cluster, a *app, p *pod, now time.Time) *corev1.Event {
	e := eventReasons[r.IntN(len(eventReasons))]
	msg := e.format
	if strings.Contains(msg, "%s") {
		arg := a.image
		switch e.reason {
		case "Unhealthy":
			arg = p.ip
		case "BackOff":
			arg = a.namespace + "/" + p.name + "(" + p.uid + ")"
		}
		msg = fmt.Sprintf(msg, arg)
	}
	t := metav1.NewTime(now.Truncate(time.Second))
	return &corev1.Event{
		TypeMeta:   metav1.TypeMeta{Kind: "Event", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", p.name, r.Uint64()>>8), Namespace: a.namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: a.namespace, Name: p.name, UID: types.UID(p.uid), APIVersion: "v1",
			ResourceVersion: fmt.Sprint(c.rv - uint64(r.IntN(5000))), FieldPath: "spec.containers{app}",
		},
		Reason: e.reason, Message: msg,
		Source:         corev1.EventSource{Component: "kubelet", Host: c.nodes[p.node].name},
		FirstTimestamp: t, LastTimestamp: t, Count: 1, Type: e.typ,
		ReportingController: "kubelet", ReportingInstance: c.nodes[p.node].name,
	}
}

// deleteOptions is the request body kubectl delete sends, as the apiserver
// logs it (with the internal version it was decoded into).
func deleteOptions() *metav1.DeleteOptions {
	return &metav1.DeleteOptions{
		TypeMeta:          metav1.TypeMeta{Kind: "DeleteOptions", APIVersion: "meta.k8s.io/__internal"},
		PropagationPolicy: ptr(metav1.DeletePropagationBackground),
	}
}

// successStatus is the response to deleting an object that is gone at once.
func successStatus(kind, name, uid string) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Details:  &metav1.StatusDetails{Name: name, Kind: kind, UID: types.UID(uid)},
	}
}
