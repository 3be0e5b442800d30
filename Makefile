# twinsite: the two commands a sysadmin needs, and the steps they are made of.
#   make demo   set everything up, bring the lab up, converge it, back it up and run a DR drill
#   make test   lint, unit tests, integration tests against the lab, Molecule scenarios
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ROOT := $(CURDIR)
export PATH := $(ROOT)/.venv/bin:$(PATH)
export CONTAINERS_CONF := $(ROOT)/scripts/labkit/containers.conf
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
# The lab's vault password file, by absolute path so tools started from any directory find it.
export ANSIBLE_VAULT_IDENTITY_LIST := lab@$(ROOT)/inventory/lab.vault-password
INVENTORY ?= inventory/lab

.PHONY: demo test setup lab-up lab-down lab-status site backup drill integration-alone integration-hosts integration-own-objects integration-last bench-drill bench-dr-scale bench-switches bench-vdi lint unit integration molecule bench bench-backup lock clean

demo: setup lab-up site backup drill  ## Set up, bring the lab up, converge, back up, drill
	@echo "demo: done. The drill's report is in reports/drills/ (newest directory: report.html)."
	@echo "The lab stays up: 'make lab-status', 'make lab-down'."

# lint and unit tests while the lab comes up (scripts/steps times each and says which ran side by
# side). Molecule alongside the integration tests was tried and saved nothing: the integration tests
# took 6.5 min longer, as long as Molecule takes alone (both need the 2 cores).
test:  ## Everything CI runs, each step timed (scripts/steps)
	@scripts/steps setup lint+unit+lab-up $(INTEGRATION_STEPS) molecule

setup:
	scripts/setup

lab-up:
	scripts/lab up

lab-down:
	scripts/lab down

lab-status:
	scripts/lab status

site:
	ansible-playbook -i $(INVENTORY) playbooks/site.yml

# Back every service up now: secondary copy, cloud copy, verification, posture report.
backup:
	ansible-playbook -i $(INVENTORY) playbooks/backup.yml

# A DR drill: rebuild the services at the secondary site in the isolated network, probe, clean up.
drill:
	ansible-playbook -i $(INVENTORY) playbooks/dr_drill.yml

lint:
	ruff check .
	yamllint --strict .
	ansible-lint --profile production

unit:
	pytest tests/unit -n auto

# The integration tests in phases (tests/integration/conftest.py says which file runs in which): the
# tests that converge or read the whole site alone; then the tests on the lab's hosts and the DR
# objects beside the tests of their own simulator objects and the switches; the lab's lifecycle last.
INTEGRATION_STEPS := integration-alone integration-hosts+integration-own-objects integration-last

integration:
	@scripts/steps $(INTEGRATION_STEPS)

integration-alone:
	pytest tests/integration --lab-phase=alone --durations=10

integration-hosts:
	pytest tests/integration --lab-phase=hosts --durations=30

integration-own-objects:
	pytest tests/integration --lab-phase=own-objects --durations=20

integration-last:
	pytest tests/integration --lab-phase=last

# Molecule's own network, not the lab's (no `tsl-` name, no lab label): `lab down`, which a test runs
# while Molecule may be running (make test), leaves it alone; it goes when the scenarios are done.
# The scenarios run two at a time (scripts/molecule-all says why).
molecule:
	podman network exists twinsite-molecule || podman network create --internal --subnet 172.31.251.0/24 \
	  --label twinsite.molecule=true twinsite-molecule >/dev/null
	scripts/molecule-all; rc=$$?; podman network rm -f twinsite-molecule >/dev/null 2>&1; exit $$rc

# Benchmarks start simulators of their own (own ports and state); results go in docs/benchmarks.md.
bench:
	python bench/inventory_vsphere.py
	python bench/inventory_proxmox.py
	python bench/vm_fleet.py

# Backs up from the running lab's dns1 to backup1 (bench-only names, removed afterwards); not in `bench`:
# it needs the lab up. See docs/benchmarks.md ("Backups").
bench-backup:
	python bench/backup.py

# A DR drill on the running lab, its wall clock split into recovery work and orchestration.
bench-drill:
	python bench/dr_drill.py

# A drill of 20 services against one of 1: adds 20 recovery hosts and a production container next to
# the running lab, removed at the end. See docs/benchmarks.md ("DR drill: 20 services against 1").
bench-dr-scale:
	python bench/dr_scale.py

# A change pushed to 50 fake Cisco IOS switches against 1, with the role's session cap and without:
# starts its own switches on loopback ports 2300+, no lab needed. Then what the role costs before
# its first switch task, 50 switches of 3 and of 24 ports (~1 min). See docs/benchmarks.md
# ("Switches: a change pushed to 50 against 1", "The role's checks as the model grows").
bench-switches:
	python bench/switch_push.py
	python bench/switch_model_check.py

# 200 VDI desktops through twinsite.dc.vdi_pool (parallel 8 and 1) against a loop of twinsite.dc.vm, on
# vcsim and fakepve of its own (ports 18991/18008), with instant clone tasks and with 1 s ones (100
# desktops: 200 slow clones in series would take ~24 min on their own). No lab needed; ~19 min.
# See docs/benchmarks.md ("VDI pools").
bench-vdi:
	python bench/vdi_pool.py --slow-desktops 100

lock:  ## Re-lock constraints.txt from the current venv
	{ echo '# Lock file: every package the venv holds, at the version CI tested. Regenerate with `make lock`.'; \
	  .venv/bin/pip freeze --exclude fake-switches; } > constraints.txt

clean: lab-down
	rm -rf .venv .lab
