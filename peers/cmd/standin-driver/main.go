// Command standin-driver is a minimal CSI controller plugin on a unix socket: Identity, and a
// Controller with PUBLISH_UNPUBLISH_VOLUME that keeps the published nodes in memory and refuses a
// second node for a single-node access mode with FAILED_PRECONDITION. It exists to run the real
// external-attacher against fake-apiserver without csi-events (csi-test's in-memory mock driver
// is a separate module the Go module proxy does not serve), and logs each call as one JSON line
// on stderr.
//
//	standin-driver --endpoint unix:///PATH [--driver-name NAME]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	name string
	mu   sync.Mutex
	// published[volume] = nodes
	published map[string]map[string]bool
}

func logCall(method string, fields map[string]any) {
	fields["method"] = method
	line, _ := json.Marshal(fields)
	fmt.Fprintln(os.Stderr, string(line))
}

func (d *driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	logCall("GetPluginInfo", map[string]any{})
	return &csi.GetPluginInfoResponse{Name: d.name, VendorVersion: "0.0.1"}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	logCall("GetPluginCapabilities", map[string]any{})
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}}, nil
}

func (d *driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	logCall("Probe", map[string]any{})
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	logCall("ControllerGetCapabilities", map[string]any{})
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME}},
	}}}, nil
}

func (d *driver) ControllerPublishVolume(_ context.Context, r *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	mode := r.GetVolumeCapability().GetAccessMode().GetMode()
	logCall("ControllerPublishVolume", map[string]any{"volume_id": r.GetVolumeId(), "node_id": r.GetNodeId(), "mode": mode.String(), "block": r.GetVolumeCapability().GetBlock() != nil, "context": r.GetVolumeContext()})
	if r.GetVolumeId() == "" || r.GetNodeId() == "" || r.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "volume_id, node_id and volume_capability are required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	nodes := d.published[r.GetVolumeId()]
	if nodes == nil {
		nodes = map[string]bool{}
		d.published[r.GetVolumeId()] = nodes
	}
	multi := mode == csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER || mode == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY || mode == csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER
	if !nodes[r.GetNodeId()] && len(nodes) > 0 && !multi {
		var others []string
		for n := range nodes {
			others = append(others, n)
		}
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is published to node %s", r.GetVolumeId(), strings.Join(others, ","))
	}
	nodes[r.GetNodeId()] = true
	return &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{"node": r.GetNodeId()}}, nil
}

func (d *driver) ControllerUnpublishVolume(_ context.Context, r *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	logCall("ControllerUnpublishVolume", map[string]any{"volume_id": r.GetVolumeId(), "node_id": r.GetNodeId()})
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.GetNodeId() == "" {
		delete(d.published, r.GetVolumeId())
	} else if nodes := d.published[r.GetVolumeId()]; nodes != nil {
		delete(nodes, r.GetNodeId())
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

func main() {
	endpoint := flag.String("endpoint", "", "unix:///PATH of the socket to serve (required)")
	name := flag.String("driver-name", "rds.csi.srvlab.io", "the plugin name GetPluginInfo answers")
	flag.Parse()
	path, ok := strings.CutPrefix(*endpoint, "unix://")
	if !ok || path == "" {
		fmt.Fprintf(os.Stderr, "standin-driver: --endpoint must be unix:///PATH, got %q\n", *endpoint)
		os.Exit(2)
	}
	_ = os.Remove(path)
	listener, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin-driver: listening on %s: %v\n", path, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	d := &driver{name: *name, published: map[string]map[string]bool{}}
	csi.RegisterIdentityServer(server, d)
	csi.RegisterControllerServer(server, d)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		server.GracefulStop()
	}()
	fmt.Printf("listening on %s\n", path)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "standin-driver: %v\n", err)
		os.Exit(1)
	}
	_ = os.Remove(path)
}
