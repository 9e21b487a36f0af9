# SPDX-License-Identifier: Apache-2.0
# fish completion for authctl(8), installed as
# share/fish/vendor_completions.d/authctl.fish. Session ids come from
# `authctl sessions --no-legend` and policy names from `authctl policy show
# --json`, run with the --config, --pin-dir and --run-dir of the command
# line; where they fail (no pins, no root for the policies) nothing is
# offered. scripts/check-completions holds this file to `authctl --help`.

# The command given so far ("sessions", "policy show"; nothing before it):
# the words that are neither options nor the values of the global options.
function __authctl_command
    set -l tokens (commandline -opc)
    set -l words
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --config --pin-dir --run-dir
                set skip 1
            case '-*'
            case '*'
                if test (count $words) -eq 0
                    set -a words $t
                else if test (count $words) -eq 1; and contains -- $words[1] policy nft
                    set -a words $t
                end
        end
    end
    echo $words
end

# Whether the command given so far is one of the arguments ('' for none).
function __authctl_is
    set -l command (__authctl_command)
    contains -- "$command" $argv
end

# authctl with the global options the command line gave, errors dropped.
function __authctl_call
    set -l tokens (commandline -opc)
    set -l global
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case --config --pin-dir --run-dir
                set -a global $tokens[$i] $tokens[(math $i + 1)]
            case '--config=*' '--pin-dir=*' '--run-dir=*'
                set -a global $tokens[$i]
        end
    end
    $tokens[1] $global $argv 2>/dev/null
end

function __authctl_session_ids
    # "ID<tab>USER POLICY" from the table's columns ID, USER, KIND, RHOST, POLICY.
    __authctl_call sessions --no-legend | while read -l id user kind rhost policy rest
        printf '%s\t%s %s\n' $id $user $policy
    end
end

function __authctl_policy_names
    # Names as policy files allow them ([A-Za-z0-9._-]): not "(unmatched)",
    # which the shell would take for a subshell.
    __authctl_call policy show --json | string replace -rf '^\s*"name": "([A-Za-z0-9._-]+)",?$' '$1'
end

function __authctl_pam_services
    set -l tokens (commandline -opc)
    set -l dir /etc/pam.d
    if set -l at (contains -i -- --pam-dir $tokens)
        set dir $tokens[(math $at + 1)]
    end
    ls $dir 2>/dev/null
end

complete -c authctl -f
complete -c authctl -s h -l help -d 'show help'

# Before the command: the global options and the commands.
complete -c authctl -n "__authctl_is ''" -l version -d 'show the version'
complete -c authctl -n "__authctl_is ''" -l config -r -F -d 'configuration file'
complete -c authctl -n "__authctl_is ''" -l pin-dir -x -a '(__fish_complete_directories)' -d 'bpffs directory of the pins'
complete -c authctl -n "__authctl_is ''" -l run-dir -x -a '(__fish_complete_directories)' -d 'session records'
complete -c authctl -n "__authctl_is ''" -a sessions -d 'list sessions: user, policy, traffic, denials, enforcement'
complete -c authctl -n "__authctl_is ''" -a users -d 'list confined users and the policy each is held to'
complete -c authctl -n "__authctl_is ''" -a show -d 'one session in full: counters per hook, record, last denials'
complete -c authctl -n "__authctl_is ''" -a revoke -d "deny a session's traffic at once, or a user's everywhere"
complete -c authctl -n "__authctl_is ''" -a status -d 'programs and where they are attached, maps, daemons, kernel'
complete -c authctl -n "__authctl_is ''" -a watch -d 'live events: open, close, revoke, reaped, expired, deny, audit, log'
complete -c authctl -n "__authctl_is ''" -a doctor -d "check the kernel, the pins and a service's PAM stack"
complete -c authctl -n "__authctl_is ''" -a enroll -d 'enforce a policy on a cgroup and everything below it'
complete -c authctl -n "__authctl_is ''" -a unenroll -d 'stop enforcing on a cgroup'
complete -c authctl -n "__authctl_is ''" -a policy -d 'check policy files, or show the policies in force'
complete -c authctl -n "__authctl_is ''" -a nft -d 'the nftables mirror of the sessions'
complete -c authctl -n "__authctl_is ''" -a metrics -d 'counters and gauges in the OpenMetrics text format'

# sessions and users
complete -c authctl -n '__authctl_is sessions users' -l json -d 'machine-readable output (= -o json)'
complete -c authctl -n '__authctl_is sessions users' -s o -l output -x -a 'short wide json' -d 'output format'
complete -c authctl -n '__authctl_is sessions users' -l no-legend -d 'no header line, for scripts'
complete -c authctl -n '__authctl_is sessions' -l user -x -a '(__fish_complete_users)' -d 'only the sessions of this user'
complete -c authctl -n '__authctl_is sessions' -l policy -x -a '(__authctl_policy_names)' -d 'only the sessions under this policy'

# show and revoke
complete -c authctl -n '__authctl_is show revoke' -x -a '(__authctl_session_ids)'
complete -c authctl -n '__authctl_is show' -l json -d 'machine-readable output'
complete -c authctl -n '__authctl_is revoke' -l user -x -a '(__fish_complete_users)' -d 'revoke the user everywhere'
complete -c authctl -n '__authctl_is revoke' -l kill -d 'also kill the processes'
complete -c authctl -n '__authctl_is revoke' -l undo -d 'with --user: lift the revocation'

# status, watch, doctor
complete -c authctl -n '__authctl_is status' -l json -d 'machine-readable output'
complete -c authctl -n '__authctl_is watch' -l json -d 'one JSON object per line'
complete -c authctl -n '__authctl_is watch' -l from-start -d 'print the events already logged first'
complete -c authctl -n '__authctl_is watch' -l count -x -d 'exit after N events'
complete -c authctl -n '__authctl_is watch' -l user -x -a '(__fish_complete_users)' -d 'only the events of this user'
complete -c authctl -n '__authctl_is watch' -l policy -x -a '(__authctl_policy_names)' -d 'only the events of this policy'
complete -c authctl -n '__authctl_is watch' -l event -x -a 'open close revoke reaped expired deny audit log' -d 'only these events'
complete -c authctl -n '__authctl_is doctor' -l pam -x -a '(__authctl_pam_services)' -d 'PAM service to check'
complete -c authctl -n '__authctl_is doctor' -l pam-dir -x -a '(__fish_complete_directories)' -d 'PAM configuration directory'
complete -c authctl -n '__authctl_is doctor' -l json -d 'machine-readable output'

# enroll, unenroll
complete -c authctl -n '__authctl_is enroll unenroll' -l cgroup -x -a '(__fish_complete_directories)' -d 'cgroup2 directory'
complete -c authctl -n '__authctl_is enroll' -l policy -x -a '(__authctl_policy_names)' -d 'policy name'
complete -c authctl -n '__authctl_is enroll' -l uid -x -d 'owner uid to record'
complete -c authctl -n '__authctl_is enroll' -l rhost -x -d 'remote address to record'
complete -c authctl -n '__authctl_is enroll' -l login -d 'record as a login session'

# policy check, policy show, policy test, nft verify
complete -c authctl -n '__authctl_is policy' -a check -d 'validate policy files without loading them'
complete -c authctl -n '__authctl_is policy' -a show -d 'the compiled policies as the kernel holds them'
complete -c authctl -n "__authctl_is 'policy check'" -F
complete -c authctl -n "__authctl_is 'policy check' 'policy show' 'nft verify'" -l json -d 'machine-readable output'
complete -c authctl -n "__authctl_is 'policy show'" -x -a '(__authctl_policy_names)'
complete -c authctl -n "__authctl_is 'policy show'" -l resolved -d 'from the files: bases folded in, sets expanded'
complete -c authctl -n '__authctl_is policy' -a test -d 'which policy a login would get, what each layer decides'
complete -c authctl -n "__authctl_is 'policy test'" -l user -x -a '(__fish_complete_users)' -d 'the user logging in'
complete -c authctl -n "__authctl_is 'policy test'" -l group -x -a '(__fish_complete_groups)' -d 'a group of the user'
complete -c authctl -n "__authctl_is 'policy test'" -l service -x -d 'the PAM service'
complete -c authctl -n "__authctl_is 'policy test'" -l rhost -x -d "the login's remote address"
complete -c authctl -n "__authctl_is 'policy test'" -l to -x -d 'the flow: ADDRESS [PROTOCOL [PORT]]'
complete -c authctl -n "__authctl_is 'policy test'" -l direction -x -a 'egress ingress bind' -d 'the rule set'
complete -c authctl -n "__authctl_is 'policy test'" -l policies -r -F -d 'policy file or directory'
complete -c authctl -n "__authctl_is 'policy test'" -l live -d 'decide with what the kernel holds'
complete -c authctl -n "__authctl_is 'policy test'" -l json -d 'machine-readable result'
complete -c authctl -n '__authctl_is nft' -a verify -d 'compare the nft sets with the sessions map'

# metrics
complete -c authctl -n '__authctl_is metrics' -l format -x -a 'openmetrics prometheus' -d 'text format'
