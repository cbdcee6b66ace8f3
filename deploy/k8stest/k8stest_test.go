// Package k8stest checks deid's deployment files: every Kubernetes manifest
// under deploy/k8s decodes strictly into the Kubernetes API types (so a
// misspelt field fails CI), the fields that matter are asserted, the
// CronJobs agree with the jobs of the policy they mount, and the Dockerfile
// keeps its required instructions and builds a static binary.
package k8stest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	runv1 "google.golang.org/api/run/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/deidproject/deid/rules"
)

// manifests holds every object of deploy/k8s by kind.
type manifests struct {
	cronJobs        []*batchv1.CronJob
	jobs            []*batchv1.Job
	deployments     []*appsv1.Deployment
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
}

// load decodes every document of every deploy/k8s/*.yaml strictly.
func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("../k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s[%d]: %v", f, i, err)
			}
			var obj any
			switch head.APIVersion + "/" + head.Kind {
			case "batch/v1/CronJob":
				o := &batchv1.CronJob{}
				m.cronJobs, obj = append(m.cronJobs, o), o
			case "batch/v1/Job":
				o := &batchv1.Job{}
				m.jobs, obj = append(m.jobs, o), o
			case "apps/v1/Deployment":
				o := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, o), o
			case "v1/ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1/ServiceAccount":
				o := &corev1.ServiceAccount{}
				m.serviceAccounts, obj = append(m.serviceAccounts, o), o
			default:
				t.Fatalf("%s[%d]: kind %s/%s has no check here: add one", f, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s[%d]: %v", f, i, err)
			}
		}
	}
	return m
}

// TestStrictDecodingRejectsTypos: the decoding the tests rely on fails on
// an unknown field.
func TestStrictDecodingRejectsTypos(t *testing.T) {
	doc := "apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: '@daily'\n  concurrencyPolicty: Forbid\n"
	if err := yaml.UnmarshalStrict([]byte(doc), &batchv1.CronJob{}); err == nil || !strings.Contains(err.Error(), "concurrencyPolicty") {
		t.Errorf("a misspelt field was accepted: %v", err)
	}
}

// policy returns the policy the manifests mount, parsed by deid.
func policy(t *testing.T, m *manifests) *rules.Policy {
	t.Helper()
	if len(m.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want the policy's", len(m.configMaps))
	}
	src, ok := m.configMaps[0].Data["policy.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no policy.yaml")
	}
	p, err := rules.Parse("policy.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkPod asserts what every deid pod needs: the service account with
// Workload Identity, nonroot, the policy and the key Secret mounted
// read-only as files, writable scratch, the image.
func checkPod(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	if spec.ServiceAccountName != "deid" {
		t.Errorf("%s: serviceAccountName %q, want deid (Workload Identity)", name, spec.ServiceAccountName)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot not set", name)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	if !strings.HasSuffix(c.Image, "/deid:VERSION") {
		t.Errorf("%s: image %s", name, c.Image)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem not read-only", name)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
		if _, ok := vols[vm.Name]; !ok {
			t.Errorf("%s: mount of undeclared volume %s", name, vm.Name)
		}
	}
	keys, ok := mounts["/var/run/secrets/deid/keys"]
	if !ok || !keys.ReadOnly {
		t.Errorf("%s: keys not mounted read-only at /var/run/secrets/deid/keys", name)
	} else if s := vols[keys.Name].Secret; s == nil || s.SecretName != "deid-keys" || s.DefaultMode == nil || *s.DefaultMode != 0o400 {
		t.Errorf("%s: keys must come from Secret deid-keys with mode 0400: %+v", name, vols[keys.Name])
	}
	if p, ok := mounts["/etc/deid"]; !ok || !p.ReadOnly || vols[p.Name].ConfigMap == nil || vols[p.Name].ConfigMap.Name != "deid-policy" {
		t.Errorf("%s: policy ConfigMap not mounted read-only at /etc/deid", name)
	}
	if s, ok := mounts["/tmp"]; !ok || vols[s.Name].EmptyDir == nil {
		t.Errorf("%s: no writable scratch at /tmp (the root filesystem is read-only)", name)
	}
	if !slices.Contains(c.Args, "/etc/deid/policy.yaml") {
		t.Errorf("%s: args %v do not name the mounted policy", name, c.Args)
	}
}

// TestCronJobs: one CronJob per policy job, with the job's schedule and
// zone, Forbid, deadlines, a retry limit, and `deid run --job`.
func TestCronJobs(t *testing.T) {
	m := load(t)
	p := policy(t, m)
	byJob := map[string]*batchv1.CronJob{}
	for _, cj := range m.cronJobs {
		c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
		if len(c) != 1 {
			t.Fatalf("%s: %d containers", cj.Name, len(c))
		}
		i := slices.Index(c[0].Args, "--job")
		if c[0].Args[0] != "run" || i < 0 || i+1 >= len(c[0].Args) {
			t.Fatalf("%s: args %v: want run ... --job NAME", cj.Name, c[0].Args)
		}
		byJob[c[0].Args[i+1]] = cj
	}
	for _, j := range p.Jobs {
		cj := byJob[j.Name]
		if cj == nil {
			t.Errorf("policy job %s has no CronJob", j.Name)
			continue
		}
		delete(byJob, j.Name)
		spec := cj.Spec
		zone := "UTC"
		sched := j.Schedule
		if rest, ok := strings.CutPrefix(sched, "CRON_TZ="); ok {
			zone, sched, _ = strings.Cut(rest, " ")
		}
		if spec.Schedule != sched || spec.TimeZone == nil || *spec.TimeZone != zone {
			t.Errorf("%s: schedule %q zone %v, the policy says %q", cj.Name, spec.Schedule, spec.TimeZone, j.Schedule)
		}
		if spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("%s: concurrencyPolicy %q, want Forbid", cj.Name, spec.ConcurrencyPolicy)
		}
		if spec.StartingDeadlineSeconds == nil {
			t.Errorf("%s: no startingDeadlineSeconds", cj.Name)
		}
		js := spec.JobTemplate.Spec
		if js.BackoffLimit == nil || *js.BackoffLimit > 3 {
			t.Errorf("%s: backoffLimit %v, want a small explicit limit", cj.Name, js.BackoffLimit)
		}
		if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
			t.Errorf("%s: no activeDeadlineSeconds", cj.Name)
		}
		if rp := js.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never (retries are the Job's backoffLimit)", cj.Name, rp)
		}
		checkPod(t, cj.Name, js.Template.Spec)
	}
	for name, cj := range byJob {
		t.Errorf("CronJob %s runs job %s, which the policy does not declare", cj.Name, name)
	}
}

// TestServeDeployment: one replica, replaced not rolled, probes on the
// endpoints deid serve has, and time to stop gracefully.
func TestServeDeployment(t *testing.T) {
	m := load(t)
	if len(m.deployments) != 1 {
		t.Fatalf("%d Deployments", len(m.deployments))
	}
	d := m.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("want 1 replica with strategy Recreate: %v %v", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	checkPod(t, d.Name, pod)
	c := pod.Containers[0]
	if c.Args[0] != "serve" {
		t.Errorf("args %v", c.Args)
	}
	flag := func(name string) string {
		i := slices.Index(c.Args, name)
		if i < 0 || i+1 >= len(c.Args) {
			t.Fatalf("serve needs an explicit %s: %v", name, c.Args)
		}
		return c.Args[i+1]
	}
	_, port, _ := strings.Cut(flag("--addr"), ":")
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || port != "9090" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("port: --addr %s, ports %+v", flag("--addr"), c.Ports)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe for %s: %+v", want, probe)
		}
	}
	grace, err1 := time.ParseDuration(flag("--grace"))
	abort, err2 := time.ParseDuration(flag("--abort-wait"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= grace+abort {
		t.Errorf("terminationGracePeriodSeconds %v must exceed --grace %s + --abort-wait %s, or the kubelet kills deid before it aborts cleanly",
			pod.TerminationGracePeriodSeconds, grace, abort)
	}
}

// TestIndexedJob: the sharded run's Job is Indexed, its pods take their
// shard from the completion index with the count equal to completions, and
// share a run id.
func TestIndexedJob(t *testing.T) {
	m := load(t)
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs, want the Indexed Job", len(m.jobs))
	}
	j := m.jobs[0]
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || s.Parallelism == nil {
		t.Fatalf("not an Indexed Job with completions and parallelism: %+v", s)
	}
	if *s.Parallelism != *s.Completions {
		t.Errorf("parallelism %d, completions %d: the shards of a run enforcing min_k wait for each other, so they must run at once", *s.Parallelism, *s.Completions)
	}
	if s.ActiveDeadlineSeconds == nil || s.BackoffLimitPerIndex == nil || s.MaxFailedIndexes == nil || *s.MaxFailedIndexes != 0 {
		t.Errorf("deadline, per-index retries and maxFailedIndexes: 0 are required")
	}
	pod := s.Template.Spec
	checkPod(t, j.Name, pod)
	c := pod.Containers[0]
	i := slices.Index(c.Args, "--shard")
	if i < 0 || c.Args[i+1] != fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", *s.Completions) {
		t.Errorf("--shard must be $(JOB_COMPLETION_INDEX)/%d: %v", *s.Completions, c.Args)
	}
	k := slices.Index(c.Args, "--run-id")
	if k < 0 || c.Args[k+1] != "$(DEID_RUN_ID)" {
		t.Fatalf("--run-id $(DEID_RUN_ID) missing: %v", c.Args)
	}
	found := false
	for _, e := range c.Env {
		if e.Name == "DEID_RUN_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['batch.kubernetes.io/controller-uid']" {
			found = true
		}
	}
	if !found {
		t.Error("DEID_RUN_ID must come from the Job's controller uid, the same for every shard")
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
}

// TestWorkloadIdentity: the service account is bound to a Google service
// account, so GCS needs no key file.
func TestWorkloadIdentity(t *testing.T) {
	m := load(t)
	if len(m.serviceAccounts) != 1 || m.serviceAccounts[0].Name != "deid" {
		t.Fatalf("want the ServiceAccount deid: %v", m.serviceAccounts)
	}
	if gsa := m.serviceAccounts[0].Annotations["iam.gke.io/gcp-service-account"]; !strings.HasSuffix(gsa, ".iam.gserviceaccount.com") {
		t.Errorf("Workload Identity annotation: %q", gsa)
	}
}

// dockerfile returns the instructions of deploy/Dockerfile, continuation
// lines joined, comments dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if cur == "" && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trim, "\\"); ok {
			cur += s + " "
			continue
		}
		out = append(out, cur+trim)
		cur = ""
	}
	return out
}

// TestDockerfile lints the Dockerfile for what the image promises (hadolint
// is not packaged for Debian; this checks the rules that matter here):
// multi-stage, a CGO_ENABLED=0 build, a distroless nonroot final stage with
// no RUN (it has no shell), a nonroot USER and exec-form ENTRYPOINT.
func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	var froms []int
	for i, in := range ins {
		if strings.HasPrefix(in, "FROM ") {
			froms = append(froms, i)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("want a build stage and a final stage, got %d FROM", len(froms))
	}
	if !regexp.MustCompile(`^FROM golang:1\.\d+\S* AS build$`).MatchString(ins[froms[0]]) {
		t.Errorf("build stage: %s", ins[froms[0]])
	}
	if !regexp.MustCompile(`^FROM gcr\.io/distroless/static\S*:nonroot$`).MatchString(ins[froms[1]]) {
		t.Errorf("final stage must be distroless static, nonroot: %s", ins[froms[1]])
	}
	if buildCommand(t, ins[:froms[1]]) == "" {
		t.Error("the build stage has no RUN CGO_ENABLED=0 go build")
	}
	final := ins[froms[1]+1:]
	var user, entry bool
	for _, in := range final {
		switch {
		case strings.HasPrefix(in, "RUN "):
			t.Errorf("RUN in the final stage (distroless has no shell): %s", in)
		case strings.HasPrefix(in, "ADD "):
			t.Errorf("ADD in the final stage: use COPY --from=build: %s", in)
		case strings.HasPrefix(in, "COPY ") && !strings.HasPrefix(in, "COPY --from=build "):
			t.Errorf("the final stage copies only the binary from the build stage: %s", in)
		case in == "USER nonroot:nonroot":
			user = true
		case strings.HasPrefix(in, "ENTRYPOINT ["):
			entry = true
		case strings.HasPrefix(in, "ENTRYPOINT ") || strings.HasPrefix(in, "CMD ") && !strings.HasPrefix(in, "CMD ["):
			t.Errorf("shell form needs a shell: %s", in)
		}
	}
	if !user || !entry {
		t.Errorf("final stage needs USER nonroot:nonroot (%v) and an exec-form ENTRYPOINT (%v)", user, entry)
	}
}

// buildCommand returns the go build command of the build stage's RUN.
func buildCommand(t *testing.T, stage []string) string {
	for _, in := range stage {
		if cmd, ok := strings.CutPrefix(in, "RUN "); ok && strings.HasPrefix(cmd, "CGO_ENABLED=0 go build ") {
			return cmd
		}
	}
	return ""
}

// TestDockerBuildIsStatic runs the Dockerfile's build command (its output
// redirected to a temporary folder) and checks that the binary is a static
// ELF: no interpreter, no shared libraries, so it runs on distroless/static.
func TestDockerBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds deid")
	}
	ins := dockerfile(t)
	cmd := buildCommand(t, ins)
	fields := strings.Fields(cmd)
	out := filepath.Join(t.TempDir(), "deid")
	var args []string
	for i := 2; i < len(fields); i++ { // after CGO_ENABLED=0 go
		f := strings.Trim(fields[i], `"'`)
		if fields[i] == "-o" {
			args = append(args, "-o", out)
			i++
			continue
		}
		if strings.HasPrefix(f, "-ldflags=") {
			f = "-ldflags=" + strings.Trim(strings.TrimPrefix(fields[i], "-ldflags="), `"'`)
			// the flag value may span fields: -ldflags="-s -w"
			for !strings.HasSuffix(fields[i], `"`) && i+1 < len(fields) {
				i++
				f += " " + strings.Trim(fields[i], `"`)
			}
		}
		if f == "./cmd/deid" {
			f = "github.com/deidproject/deid/cmd/deid"
		}
		args = append(args, f)
	}
	if !slices.Contains(args, "-o") {
		t.Fatalf("build command without -o: %s", cmd)
	}
	c := exec.Command("go", args...)
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, stderr.String())
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	if f.Section(".dynamic") != nil {
		t.Error("the binary has a .dynamic section")
	}
}

// TestCloudRunJob: the Cloud Run job decodes strictly into the Cloud Run
// Admin API's Job type and runs a sharded run the way deid expects: tasks
// in parallel, no explicit --shard or --run-id (deid reads
// CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_EXECUTION), keys
// mounted as files, a timeout and a bounded retry.
func TestCloudRunJob(t *testing.T) {
	b, err := os.ReadFile("../cloudrun/job-sharded.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var j runv1.Job
	if err := yaml.UnmarshalStrict(b, &j); err != nil {
		t.Fatalf("deploy/cloudrun/job-sharded.yaml: %v", err)
	}
	if j.ApiVersion != "run.googleapis.com/v1" || j.Kind != "Job" || j.Metadata == nil || j.Metadata.Name == "" {
		t.Fatalf("not a named Cloud Run Job: %s %s", j.ApiVersion, j.Kind)
	}
	if j.Spec == nil || j.Spec.Template == nil || j.Spec.Template.Spec == nil {
		t.Fatal("no execution template")
	}
	ex := j.Spec.Template.Spec
	if ex.TaskCount < 2 || ex.Parallelism != ex.TaskCount {
		t.Errorf("taskCount %d, parallelism %d: a sharded run runs its tasks at once (with min_k they wait for each other)", ex.TaskCount, ex.Parallelism)
	}
	task := ex.Template.Spec
	if task.TimeoutSeconds <= 0 || task.MaxRetries < 1 || task.ServiceAccountName == "" {
		t.Errorf("timeout %d, maxRetries %d, service account %q", task.TimeoutSeconds, task.MaxRetries, task.ServiceAccountName)
	}
	if len(task.Containers) != 1 {
		t.Fatalf("%d containers", len(task.Containers))
	}
	c := task.Containers[0]
	if len(c.Args) < 3 || c.Args[0] != "run" || !slices.Contains(c.Args, "-c") {
		t.Errorf("args %v: want run -c <policy>", c.Args)
	}
	if slices.Contains(c.Args, "--shard") || slices.Contains(c.Args, "--run-id") {
		t.Errorf("args %v: Cloud Run gives the shard and run id through its environment", c.Args)
	}
	for _, e := range c.Env {
		if strings.Contains(strings.ToUpper(e.Name), "KEY") {
			t.Errorf("env %s: keys are mounted as files, not passed in the environment", e.Name)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	keys := false
	for _, v := range task.Volumes {
		if v.Secret != nil && mounts[v.Name] == "/var/run/secrets/deid/keys" {
			keys = v.Secret.DefaultMode == 0o400
		}
	}
	if !keys {
		t.Error("the keys must be a secret volume at /var/run/secrets/deid/keys with mode 0400")
	}
}
