// Command vcsim runs govmomi's vCenter simulator for twinsite's lab, over TLS with the lab CA's
// certificate and one fixed login, so clients keep certificate checks and credentials on as they
// would at a real site.
//
// It starts with an empty inventory (only the root folder): scripts/labkit/vcsim.py creates the
// datacenter, clusters, hosts, port groups and VMs through the vSphere API after start, the same
// way an operator would. The simulator keeps everything in memory, so that happens at every start.
//
// For fault tests (tests/integration/test_vm_faults_vsphere.py) three optional flags change how
// chosen methods behave; without them the simulator behaves as govmomi ships it:
//
//	-method-delay CloneVM_Task=2000     the SOAP call itself answers 2s late (govmomi's MethodDelay)
//	-fail-task CloneVm='VM locked'      the task ends in error with that message, having done nothing
//	-slow-task PowerOn=3000             the task reports "running" for 3s after the call has returned
//
// Task names are the simulator's task info.name (CloneVm, PowerOn, PowerOff, ReconfigVm,
// Destroy...), not the SOAP method's name: the simulator runs a task inside the call that creates
// it, so a task knob sees the task, not the call.
//
// Build (no Go module proxy needed; uses Debian's golang-github-vmware-govmomi-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim main.go
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the vAPI (REST) endpoints: tagging
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// newerGuestIDs are guest OS ids that vCenter 8 accepts but govmomi 0.24's simulator does not know
// (its list stops at debian10, for example). Its CreateVM does not check the id, but ReconfigVM
// does, so a playbook that reconfigures a debian12_64Guest VM would get InvalidArgument.
var newerGuestIDs = []types.VirtualMachineGuestOsIdentifier{
	"debian11Guest", "debian11_64Guest", "debian12Guest", "debian12_64Guest", "debian13Guest", "debian13_64Guest",
	"rhel9_64Guest", "centos9_64Guest", "rockylinux_64Guest", "almalinux_64Guest",
	"other5xLinux64Guest", "other6xLinux64Guest", "other7xLinux64Guest",
	"windows11_64Guest", "windows2019srvNext_64Guest", "windows2022srvNext_64Guest",
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "host:port to serve the vSphere API on (https)")
	certFile := flag.String("cert", "", "PEM server certificate (leaf first, then the CA)")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	username := flag.String("username", "", "the only user name Login accepts")
	password := flag.String("password", "", "the password of -username (default: $VCSIM_PASSWORD)")
	methodDelay := flag.String("method-delay", "", "Method=ms,...: answer these SOAP calls late")
	failTask := flag.String("fail-task", "", "Task=message,...: these tasks fail with that message")
	slowTask := flag.String("slow-task", "", "Task=ms,...: these tasks stay running that long")
	flag.Parse()
	// The lab passes the password by environment so that `ps` does not show it.
	if *password == "" {
		*password = os.Getenv("VCSIM_PASSWORD")
	}

	if *certFile == "" || *keyFile == "" || *username == "" || *password == "" {
		log.Fatal("vcsim: -cert, -key, -username and -password are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("vcsim: loading certificate %s / key %s: %v", *certFile, *keyFile, err)
	}
	// The simulator panics with a stack trace when it cannot listen; check first for a plain message.
	probe, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("vcsim: cannot listen on %s: %v", *listen, err)
	}
	probe.Close()

	simulator.GuestID = append(simulator.GuestID, newerGuestIDs...)

	// VPX() is the vCenter flavour (ServiceContent with a ViewManager, DVS support...). Zero
	// datacenters makes its Create() build no demo inventory (DC0, DC0_C0_H0, VMs...).
	model := simulator.VPX()
	model.Datacenter = 0
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: creating the empty inventory: %v", err)
	}
	defer model.Remove()

	// The simulator reads both the address and the accepted login from Service.Listen. Without a
	// User it accepts any non-empty user name and password, which would hide wrong credentials.
	delays, err := millis(*methodDelay)
	if err != nil {
		log.Fatalf("vcsim: -method-delay: %v", err)
	}
	model.DelayConfig.MethodDelay = delays
	if *failTask != "" || *slowTask != "" {
		knobs := &taskKnobs{fail: pairs(*failTask), slow: map[string]int{}, held: map[types.ManagedObjectReference]bool{}}
		if knobs.slow, err = millis(*slowTask); err != nil {
			log.Fatalf("vcsim: -slow-task: %v", err)
		}
		// Added after Create(), which replaces the registry; every task Put from now on passes by it.
		simulator.Map.AddHandler(knobs)
	}

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	// With TLS set, NewServer serves https with our certificate instead of its built-in test one.
	// Serve the vAPI REST endpoints (/rest: sessions, tagging) next to /sdk, as a vCenter does.
	model.Service.RegisterEndpoints = true
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}

	server := model.Service.NewServer()
	defer server.Close()
	fmt.Printf("vcsim: serving %s/sdk (user %s)\n", server.URL.Scheme+"://"+server.URL.Host, *username)

	// Run until `lab down` sends SIGTERM (or Ctrl-C), then close the listener cleanly.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	sig := <-stop
	fmt.Printf("vcsim: %s, stopping\n", sig)
}

// taskKnobs makes chosen simulator tasks fail or finish late. It is a registry handler: the
// registry calls PutObject when a task is created (before it runs) and UpdateObject when its
// state changes.
type taskKnobs struct {
	fail map[string]string // task name -> fault message
	slow map[string]int    // task name -> ms the task stays "running"
	mu   sync.Mutex
	held map[types.ManagedObjectReference]bool // slow tasks whose final state is being held back
}

func (k *taskKnobs) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "TwinsiteTaskKnobs", Value: "task-knobs"}
}

func (k *taskKnobs) PutObject(obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok {
		return
	}
	if msg, ok := k.fail[task.Info.Name]; ok {
		// Replace the work itself: the task fails without creating anything, like a vCenter
		// that refuses a clone up front (VM locked by a backup, datastore full).
		task.Execute = func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return nil, &types.SystemError{RuntimeFault: types.RuntimeFault{MethodFault: types.MethodFault{
				FaultMessage: []types.LocalizableMessage{{Key: "twinsite.fault", Message: msg}}}}, Reason: msg}
		}
	}
	if _, ok := k.slow[task.Info.Name]; ok {
		k.mu.Lock()
		k.held[task.Self] = true
		k.mu.Unlock()
	}
}

func (k *taskKnobs) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	task, ok := obj.(*mo.Task)
	if !ok || !finished(changes) {
		return
	}
	if msg, ok := k.fail[task.Info.Name]; ok && task.Info.Error != nil {
		// The simulator puts the Go type name ("*types.SystemError") where vCenter puts a
		// sentence; clients print localizedMessage, so give them the sentence.
		simulator.Map.Update(task, []types.PropertyChange{{Name: "info.error",
			Val: types.LocalizedMethodFault{Fault: task.Info.Error.Fault, LocalizedMessage: msg}}})
	}
	k.mu.Lock()
	hold := k.held[task.Self]
	delete(k.held, task.Self)
	k.mu.Unlock()
	if !hold {
		return
	}
	// The work is done, but clients polling the task must see it running until the delay is
	// over: show "running" now and the real final state later (this handler lets that one pass).
	final := []types.PropertyChange{{Name: "info.state", Val: task.Info.State}}
	simulator.Map.Update(task, []types.PropertyChange{{Name: "info.state", Val: types.TaskInfoStateRunning}})
	go func(delay time.Duration) {
		time.Sleep(delay)
		simulator.Map.Update(task, final)
	}(time.Duration(k.slow[task.Info.Name]) * time.Millisecond)
}

func (k *taskKnobs) RemoveObject(types.ManagedObjectReference) {}

// finished tells whether changes set a task's final state (success or error).
func finished(changes []types.PropertyChange) bool {
	for _, c := range changes {
		if c.Name == "info.state" && (c.Val == types.TaskInfoStateSuccess || c.Val == types.TaskInfoStateError) {
			return true
		}
	}
	return false
}

// pairs parses "A=x,B=y" into a map; an empty string gives an empty map.
func pairs(s string) map[string]string {
	m := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		if name, value, ok := strings.Cut(item, "="); ok && name != "" {
			m[name] = value
		}
	}
	return m
}

// millis parses "A=1000,B=250" into milliseconds per name.
func millis(s string) (map[string]int, error) {
	m := map[string]int{}
	for name, value := range pairs(s) {
		ms, err := strconv.Atoi(value)
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("%s=%q is not a number of milliseconds", name, value)
		}
		m[name] = ms
	}
	return m, nil
}
