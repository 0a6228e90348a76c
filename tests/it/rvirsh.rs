//! rvirsh against virsh (libvirt 9.0 test driver): the same command sequences, the same output.
