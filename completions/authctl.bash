# SPDX-License-Identifier: Apache-2.0
# bash completion for authctl(8)                           -*- shell-script -*-
# Installed as share/bash-completion/completions/authctl. Session ids come
# from `authctl sessions --no-legend` and policy names from `authctl policy
# show --json`, run with the --config, --pin-dir and --run-dir of the command
# line; where they fail (no pins, no root for the policies) nothing is
# offered. scripts/check-completions holds this file to `authctl --help`.

# authctl with the global options the command line gave, errors dropped.
_authctl_call()
{
    local -a global=()
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --config | --pin-dir | --run-dir)
            # "--config FILE", or "--config = FILE" as bash splits --config=FILE
            if [[ ${COMP_WORDS[i + 1]} == = ]]; then
                global+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 2]}")
            else
                global+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
            fi
            ;;
        esac
    done
    "${COMP_WORDS[0]}" "${global[@]}" "$@" 2>/dev/null
}

_authctl_session_ids()
{
    _authctl_call sessions --no-legend | while read -r id _; do printf '%s\n' "$id"; done
}

_authctl_policy_names()
{
    # Names as policy files allow them ([A-Za-z0-9._-]): not "(unmatched)",
    # which the shell would take for a subshell.
    _authctl_call policy show --json | sed -n 's/^ *"name": "\([A-Za-z0-9._-]*\)",\{0,1\}$/\1/p'
}

# COMPREPLY: the words of the list $1 that start with $2.
_authctl_words()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

# COMPREPLY: files (-f) or directories (-d) that start with $2.
_authctl_files()
{
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen "$1" -- "$2")
}

# The options of each command (each also takes -h, --help).
_authctl_options()
{
    case $1 in
    sessions) echo "--json -o --output --no-legend --user --policy" ;;
    users) echo "--json -o --output --no-legend" ;;
    show) echo "--json" ;;
    revoke) echo "--user --kill --undo" ;;
    status) echo "--json" ;;
    watch) echo "--json --from-start --count --user --policy --event" ;;
    doctor) echo "--pam --pam-dir --json" ;;
    enroll) echo "--cgroup --policy --uid --rhost --login" ;;
    unenroll) echo "--cgroup" ;;
    "policy check" | "nft verify") echo "--json" ;;
    "policy show") echo "--json --resolved" ;;
    "policy test") echo "--user --group --service --rhost --to --direction --policies --live --json" ;;
    metrics) echo "--format" ;;
    esac
}

# The value of an option: 0 when `prev` takes one (and it is completed).
_authctl_value()
{
    local command=$1 prev=$2 cur=$3
    case $prev in
    --config | --policies) _authctl_files -f "$cur" ;;
    --direction) _authctl_words "egress ingress bind" "$cur" ;;
    --event) _authctl_words "open close revoke reaped expired deny audit log" "$cur" ;;
    --group) _authctl_words "$(compgen -g)" "$cur" ;;
    --pin-dir | --run-dir | --pam-dir | --cgroup) _authctl_files -d "$cur" ;;
    -o | --output) _authctl_words "short wide json" "$cur" ;;
    --format) _authctl_words "openmetrics prometheus" "$cur" ;;
    --user) _authctl_words "$(compgen -u)" "$cur" ;;
    --policy) _authctl_words "$(_authctl_policy_names)" "$cur" ;;
    --pam)
        local dir=/etc/pam.d i
        for ((i = 1; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} == --pam-dir ]] && dir=${COMP_WORDS[i + 1]}
        done
        _authctl_words "$(ls "$dir" 2>/dev/null)" "$cur"
        ;;
    --count | --uid | --rhost | --service | --to) COMPREPLY=() ;;
    *) return 1 ;;
    esac
    return 0
}

_authctl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    # --output=json: bash splits the word at '='.
    if [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == = ]]; then
        cur=""
    fi
    local command="" i word
    # The command ("sessions", "policy show"): the words that are neither
    # options nor the values of the global options.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
        --config | --pin-dir | --run-dir)
            if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i += 2)); else ((i += 1)); fi
            ;;
        =) ((i += 1)) ;; # --output=json: the value
        -*) ;;
        *)
            if [[ -z $command ]]; then
                command=$word
            elif [[ ($command == policy || $command == nft) ]]; then
                command="$command $word"
            fi
            ;;
        esac
    done
    _authctl_value "$command" "$prev" "$cur" && return 0

    case $command in
    "")
        if [[ $cur == -* ]]; then
            _authctl_words "--config --pin-dir --run-dir --version -h --help" "$cur"
        else
            _authctl_words "sessions users show revoke status watch doctor enroll unenroll policy nft metrics" "$cur"
        fi
        return 0
        ;;
    policy)
        _authctl_words "check show test -h --help" "$cur"
        return 0
        ;;
    nft)
        _authctl_words "verify -h --help" "$cur"
        return 0
        ;;
    esac
    if [[ $cur == -* ]]; then
        _authctl_words "$(_authctl_options "$command") -h --help" "$cur"
        return 0
    fi
    case $command in
    show | revoke) _authctl_words "$(_authctl_session_ids)" "$cur" ;;
    "policy show") _authctl_words "$(_authctl_policy_names)" "$cur" ;;
    "policy check") _authctl_files -f "$cur" ;;
    *) COMPREPLY=() ;;
    esac
    return 0
}

complete -F _authctl authctl
