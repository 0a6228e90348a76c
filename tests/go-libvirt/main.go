package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

func show(what string, v interface{}, err error) {
	if err != nil {
		fmt.Printf("%-22s error: %v\n", what, err)
		return
	}
	fmt.Printf("%-22s %v\n", what, v)
}

// Usage: go-libvirt-check SOCKET URI. Prints one line per call; run it against rvirtd's
// libvirt socket and against a private libvirtd with the same URI, and diff the two.
func main() {
	c, err := net.DialTimeout("unix", os.Args[1], 2*time.Second)
	if err != nil {
		panic(err)
	}
	l := libvirt.New(c)
	if err := l.ConnectToURI(libvirt.ConnectURI(os.Args[2])); err != nil {
		panic(err)
	}
	v, err := l.Version()
	show("Version", v, err)
	xml := "<domain type='test'><name>g2</name><uuid>6f1b2c3d-0000-4000-8000-000000000002</uuid><memory unit='KiB'>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>"
	show("DefineXML", "", l.DefineXML([]byte(xml), 0))
	st, err := l.DomainState("g2")
	show("DomainState", st, err)
	d, err := l.DomainLookupByName("g2")
	show("LookupByName", d.Name, err)
	show("DomainCreate", "", l.DomainCreate(d))
	state, maxmem, mem, vcpus, _, err := l.DomainGetInfo(d)
	show("GetInfo", fmt.Sprint(state, maxmem, mem, vcpus), err)
	a, err := l.DomainGetAutostart(d)
	show("GetAutostart", a, err)
	show("SetAutostart", "", l.DomainSetAutostart(d, 1))
	a, err = l.DomainGetAutostart(d)
	show("GetAutostart", a, err)
	doms, err := l.Domains()
	show("Domains", len(doms), err)
	x, err := l.XML("g2", 0)
	show("XML bytes>0", len(x) > 0, err)
	_, err = l.DomainSnapshotCreateXML(d, "<domainsnapshot><name>s1</name></domainsnapshot>", 0)
	show("SnapshotCreate", "s1", err)
	snaps, n, err := l.DomainListAllSnapshots(d, 10, 0)
	show("ListAllSnapshots", fmt.Sprint(n, len(snaps)), err)
	cur, err := l.DomainSnapshotCurrent(d, 0)
	show("SnapshotCurrent", cur.Name, err)
	events, err := l.LifecycleEvents(context.Background())
	if err != nil {
		panic(err)
	}
	show("Suspend", "", l.DomainSuspend(d))
	select {
	case e := <-events:
		show("Lifecycle event", fmt.Sprint(e.Dom.Name, " ", e.Event, " ", e.Detail), nil)
	case <-time.After(3 * time.Second):
		show("Lifecycle event", "none within 3 s", nil)
	}
	st, err = l.DomainState("g2")
	show("DomainState", st, err)
	show("Resume", "", l.DomainResume(d))
	show("ManagedSave", "", l.DomainManagedSave(d, 0))
	h, err := l.DomainHasManagedSaveImage(d, 0)
	show("HasManagedSave", h, err)
	show("Create (restore)", "", l.DomainCreate(d))
	show("Reboot", "", l.Reboot("g2", 0))
	show("Reset", "", l.Reset("g2"))
	show("Shutdown", "", l.Shutdown("g2", 0))
	st, err = l.DomainState("g2")
	show("DomainState", st, err)
	show("SnapshotDelete", "", l.DomainSnapshotDelete(cur, 0))
	show("Undefine", "", l.Undefine("g2", 0))
	_, err = l.DomainLookupByName("g2")
	show("Lookup after", "", err)
	_, err = l.Capabilities()
	show("Capabilities", "", err)
	show("Disconnect", "", l.Disconnect())
}
