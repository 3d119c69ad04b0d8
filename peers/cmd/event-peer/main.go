// Command event-peer posts the benches' workloads through client-go's event recorders against a
// Kubernetes API server (the project's fake-apiserver over HTTP), so the Rust benches can measure
// them beside csi-events in the same run.
//
// Recorders (--recorder):
//
//	record  tools/record: one broadcaster, StartRecordingToSink with the typed core/v1 sink and
//	        the default EventCorrelator (spam filter burst 25 / 1 per 300 s, aggregation of 10
//	        similar messages, LRU 4096), the involved object the fetched claim (as the Go driver
//	        this project replaces posts).
//	events  tools/events: events.k8s.io/v1 with series, the typed events/v1 sink.
//
// Workloads (--workload):
//
//	storm   --claims N claims vms/disk-0..N-1, --repeats R rounds, post i of claim c as the
//	        storm bench's post_of(c, i).
//	caller  --posts P posts of a Warning MountFailure "attempt i" on vms/disk-0.
//
// Protocol with the bench: after setup (reading the claims) the program prints "ready" and waits
// for one line on stdin; then it posts, waits until the recorder has been idle for --idle, and
// prints one JSON object (see Result) on stdout. The bench counts the API server's requests
// between its "go" line and that result.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Result is the one JSON line printed at the end.
type Result struct {
	Recorder string `json:"recorder"`
	Workload string `json:"workload"`
	Posts    int    `json:"posts"`
	// SinkCalls is how many Create/Update/Patch calls the recorder made (each one HTTP request
	// unless client-go's REST layer retried it).
	SinkCalls int64 `json:"sink_calls"`
	// SinkErrors is how many of those calls returned an error.
	SinkErrors int64 `json:"sink_errors"`
	// WallMs is from the first post to the end of the last sink call.
	WallMs float64 `json:"wall_ms"`
	// PostMedianUs and PostP99Us are the caller-side cost of one post (the recorder call).
	PostMedianUs float64 `json:"post_median_us"`
	PostP99Us    float64 `json:"post_p99_us"`
}

// counter wraps a sink's calls: how many, how many failed, when the last one ended.
type counter struct {
	calls    atomic.Int64
	errors   atomic.Int64
	inFlight atomic.Int64
	mu       sync.Mutex
	lastEnd  time.Time
}

func (c *counter) begin() { c.calls.Add(1); c.inFlight.Add(1) }

func (c *counter) end(err error) {
	if err != nil {
		c.errors.Add(1)
	}
	c.mu.Lock()
	c.lastEnd = time.Now()
	c.mu.Unlock()
	c.inFlight.Add(-1)
}

func (c *counter) last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastEnd
}

// recordSink is tools/record's typed core/v1 sink with counting.
type recordSink struct {
	inner *typedcorev1.EventSinkImpl
	c     *counter
}

func (s *recordSink) Create(e *corev1.Event) (*corev1.Event, error) {
	s.c.begin()
	r, err := s.inner.Create(e)
	s.c.end(err)
	return r, err
}

func (s *recordSink) Update(e *corev1.Event) (*corev1.Event, error) {
	s.c.begin()
	r, err := s.inner.Update(e)
	s.c.end(err)
	return r, err
}

func (s *recordSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	s.c.begin()
	r, err := s.inner.Patch(e, data)
	s.c.end(err)
	return r, err
}

// eventsSink is tools/events' typed events/v1 sink with counting.
type eventsSink struct {
	inner *events.EventSinkImpl
	c     *counter
}

func (s *eventsSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.c.begin()
	r, err := s.inner.Create(ctx, e)
	s.c.end(err)
	return r, err
}

func (s *eventsSink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.c.begin()
	r, err := s.inner.Update(ctx, e)
	s.c.end(err)
	return r, err
}

func (s *eventsSink) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	s.c.begin()
	r, err := s.inner.Patch(ctx, e, data)
	s.c.end(err)
	return r, err
}

// post is one recorder call: (regarding, type, reason, message).
type post func(obj runtime.Object, eventType, reason, message string)

// postOf is the storm bench's i-th post on claim c (benches/storm.rs, post_of).
func postOf(claim, i int) (string, string) {
	vol := fmt.Sprintf("pvc-%d", claim)
	switch i % 4 {
	case 0:
		return "MigrationStarted", fmt.Sprintf("[%s]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s", vol)
	case 1:
		return "MigrationStarted", fmt.Sprintf("[%s]: KubeVirt live migration started - source: node-a, target: node-c, timeout: 5m0s", vol)
	case 2:
		return "VolumeDetached", fmt.Sprintf("[%s]: Detached from node node-a", vol)
	default:
		return "VolumeAttached", fmt.Sprintf("[%s]: Attached to node node-a (duration: 153ms)", vol)
	}
}

func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sort.Slice(samples, func(a, b int) bool { return samples[a] < samples[b] })
	i := int(float64(len(samples)-1)*p + 0.5)
	if i >= len(samples) {
		i = len(samples) - 1
	}
	return samples[i]
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "event-peer: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server (required)")
	recorderName := flag.String("recorder", "record", "record (tools/record) or events (tools/events)")
	workload := flag.String("workload", "storm", "storm or caller")
	claims := flag.Int("claims", 200, "storm: claims vms/disk-0..N-1")
	repeats := flag.Int("repeats", 100, "storm: rounds over every claim")
	posts := flag.Int("posts", 200, "caller: posts on vms/disk-0")
	idle := flag.Duration("idle", 500*time.Millisecond, "the recorder is done when no sink call ran for this long")
	sleep := flag.Duration("sleep", 10*time.Second, "record/events: the sleep between a failed write's tries (client-go's default 10s)")
	maxWait := flag.Duration("max-wait", 10*time.Minute, "give up waiting for the recorder after this long")
	logs := flag.Bool("logs", false, "let client-go log to stderr (off: its retry logs are discarded)")
	flag.Parse()
	if !*logs {
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
	}

	if *kubeconfig == "" {
		fail("--kubeconfig is required")
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("reading kubeconfig %s: %v", *kubeconfig, err)
	}
	// No client-side throttling: the benches count requests, not the client's rate limiter.
	config.QPS = -1
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fail("building the client: %v", err)
	}

	n := *claims
	if *workload == "caller" {
		n = 1
	} else if *workload != "storm" {
		fail("--workload must be storm or caller, got %q", *workload)
	}
	objects := make([]runtime.Object, n)
	list, err := client.CoreV1().PersistentVolumeClaims("vms").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		fail("listing claims in vms: %v", err)
	}
	byName := map[string]*corev1.PersistentVolumeClaim{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	for c := 0; c < n; c++ {
		pvc, ok := byName[fmt.Sprintf("disk-%d", c)]
		if !ok {
			fail("claim vms/disk-%d is missing (the bench seeds them)", c)
		}
		objects[c] = pvc
	}

	c := &counter{}
	var send post
	var shutdown func()
	switch *recorderName {
	case "record":
		broadcaster := record.NewBroadcaster(record.WithSleepDuration(*sleep))
		broadcaster.StartRecordingToSink(&recordSink{inner: &typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")}, c: c})
		recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "rds-csi-controller"})
		send = func(obj runtime.Object, eventType, reason, message string) {
			recorder.Event(obj, eventType, reason, message)
		}
		shutdown = broadcaster.Shutdown
	case "events":
		broadcaster := events.NewBroadcaster(&eventsSink{inner: &events.EventSinkImpl{Interface: client.EventsV1()}, c: c})
		stop := make(chan struct{})
		broadcaster.StartRecordingToSink(stop)
		recorder := broadcaster.NewRecorder(scheme.Scheme, "rds-csi-controller")
		send = func(obj runtime.Object, eventType, reason, message string) {
			recorder.Eventf(obj, nil, eventType, reason, reason, "%s", message)
		}
		shutdown = func() { close(stop); broadcaster.Shutdown() }
	default:
		fail("--recorder must be record or events, got %q", *recorderName)
	}

	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail("waiting for the go line on stdin: %v", err)
	}

	var samples []time.Duration
	started := time.Now()
	switch *workload {
	case "storm":
		samples = make([]time.Duration, 0, *claims**repeats)
		for i := 0; i < *repeats; i++ {
			for cl := 0; cl < *claims; cl++ {
				reason, message := postOf(cl, i)
				t := time.Now()
				send(objects[cl], corev1.EventTypeNormal, reason, message)
				samples = append(samples, time.Since(t))
			}
		}
	case "caller":
		samples = make([]time.Duration, 0, *posts)
		for i := 0; i < *posts; i++ {
			t := time.Now()
			send(objects[0], corev1.EventTypeWarning, "MountFailure", fmt.Sprintf("attempt %d", i))
			samples = append(samples, time.Since(t))
		}
	}

	// Done: no call in flight and none ended within the idle window.
	deadline := time.Now().Add(*maxWait)
	for time.Now().Before(deadline) {
		time.Sleep(*idle / 5)
		last := c.last()
		if c.inFlight.Load() == 0 && (last.IsZero() && time.Since(started) > *idle || !last.IsZero() && time.Since(last) > *idle) {
			break
		}
	}
	end := c.last()
	if end.IsZero() {
		end = started
	}
	shutdown()

	result := Result{
		Recorder:     *recorderName,
		Workload:     *workload,
		Posts:        len(samples),
		SinkCalls:    c.calls.Load(),
		SinkErrors:   c.errors.Load(),
		WallMs:       float64(end.Sub(started).Microseconds()) / 1000,
		PostMedianUs: float64(percentile(samples, 0.5).Nanoseconds()) / 1000,
		PostP99Us:    float64(percentile(samples, 0.99).Nanoseconds()) / 1000,
	}
	out, err := json.Marshal(result)
	if err != nil {
		fail("encoding the result: %v", err)
	}
	fmt.Println(string(out))
}
