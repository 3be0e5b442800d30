// Command vcsim runs govmomi's vCenter simulator for twinsite's lab, over TLS with the lab CA's
// certificate and one fixed login, so clients keep certificate checks and credentials on as they
// would at a real site.
//
// It starts with an empty inventory (only the root folder): scripts/labkit/vcsim.py creates the
// datacenter, clusters, hosts, port groups and VMs through the vSphere API after start, the same
// way an operator would. The simulator keeps everything in memory, so that happens at every start.
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
	"syscall"

	"github.com/vmware/govmomi/simulator"
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
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	// With TLS set, NewServer serves https with our certificate instead of its built-in test one.
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
