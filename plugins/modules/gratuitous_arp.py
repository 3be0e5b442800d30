#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gratuitous_arp
short_description: Announce that this host now holds an IPv4 address (gratuitous ARP)
version_added: 0.3.0
description:
  - Sends gratuitous ARP requests and replies for an address this host holds. When an address
    moves to another host, in a failover or a failback, the neighbours then update their ARP caches
    at once. Otherwise they keep sending to the old holder until their entries expire.
  - Does what C(arping -U) does, and what keepalived and Pacemaker's IPaddr2 do when they move an
    address, with the Python standard library only (an C(AF_PACKET) socket, Linux).
  - Runs on the host that holds the address.
options:
  address:
    description: The IPv4 address to announce; the interface that holds it is found from it.
    type: str
    required: true
  count:
    description: How many request/reply pairs to send, 0.2 s apart.
    type: int
    default: 3
attributes:
  check_mode:
    support: full
    description: Finds the interface, sends nothing.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Tell the network that 192.0.2.43 is here now
  twinsite.dc.gratuitous_arp:
    address: 192.0.2.43
"""

RETURN = r"""
interface:
  description: The interface that holds the address, on which the announcements went out.
  returned: always
  type: str
  sample: eth1
mac:
  description: Its hardware address.
  returned: always
  type: str
  sample: "0a:58:ac:1f:14:33"
sent:
  description: Frames sent (0 in check mode).
  returned: always
  type: int
"""

import ipaddress
import socket
import struct
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

BROADCAST = b"\xff" * 6
ETH_P_ARP = 0x0806


def interface_of(address: str) -> str | None:
    """The interface holding ``address`` (``ip -o -4 addr``: 'N: eth1 inet 192.0.2.43/24 ...')."""
    done = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "inet" and fields[3].split("/")[0] == address:
            return fields[1].split("@")[0]
    return None


def frame(mac: bytes, ip: bytes, op: int) -> bytes:
    """An ARP frame saying ``ip`` is at ``mac``: op 1 (request) or 2 (reply), sender and target ``ip``."""
    target_mac = b"\x00" * 6 if op == 1 else BROADCAST
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, ip, target_mac, ip)
    return BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def main():
    module = AnsibleModule(
        argument_spec={"address": {"type": "str", "required": True}, "count": {"type": "int", "default": 3}},
        supports_check_mode=True,
    )
    address = module.params["address"].split("/")[0]
    try:
        ip = ipaddress.IPv4Address(address).packed
    except ValueError:
        module.fail_json(msg=f"address {module.params['address']!r} is not an IPv4 address")
    dev = interface_of(address)
    if dev is None:
        module.fail_json(msg=f"no interface of this host holds {address}: add the address before announcing it")
    with open(f"/sys/class/net/{dev}/address", encoding="ascii") as handle:
        mac_text = handle.read().strip()
    mac = bytes.fromhex(mac_text.replace(":", ""))
    sent = 0
    if not module.check_mode:
        try:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind((dev, ETH_P_ARP))
                for n in range(module.params["count"]):
                    sock.send(frame(mac, ip, 1))
                    sock.send(frame(mac, ip, 2))
                    sent += 2
                    if n + 1 < module.params["count"]:
                        time.sleep(0.2)
        except OSError as exc:
            module.fail_json(msg=f"announcing {address} on {dev} failed: {exc.strerror} (needs CAP_NET_RAW)")
    module.exit_json(changed=sent > 0, interface=dev, mac=mac_text, sent=sent)


if __name__ == "__main__":
    main()
