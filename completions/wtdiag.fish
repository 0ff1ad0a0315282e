# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wtdiag_global_optspecs
    string join \n h/help V/version
end

function __fish_wtdiag_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wtdiag_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wtdiag_using_subcommand
    set -l cmd (__fish_wtdiag_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wtdiag -n "__fish_wtdiag_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -s V -l version -d 'Print version'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "logs" -d 'Diagnose worker timeouts and kills from Gunicorn error logs'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "pg" -d 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "live" -d 'Sample the stacks of a running Gunicorn\'s workers with py-spy and name what they wait on'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "watch" -d 'Wait beside a Gunicorn master; when a worker\'s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "man" -d 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)'
complete -c wtdiag -n "__fish_wtdiag_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l app-log -d 'Application log with request start/end lines (time, pid, METHOD /path), to name the request each timed-out worker was serving' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l pg-log -d 'PostgreSQL server log, to tell lock waits, deadlocks and slow statements apart at the time of each timeout' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l pg-tz -d 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL\'s default set reads it (IST is Israel\'s +02:00), with a warning when it has other meanings' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l timeout -d 'Gunicorn\'s --timeout in seconds (default: Gunicorn\'s 30), to read request times from access and slow-request logs against: endpoints close to it, requests past it' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -s j -l jobs -d 'Threads reading Gunicorn logs and multi-origin streams (default: one per core); the report is the same for any number' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l since -d 'Only events at or after this time (RFC 3339, or \'YYYY-MM-DD HH:MM:SS[ +HHMM]\'; UTC when no offset)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l until -d 'Only events at or before this time (same forms as --since)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l format -d 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)' -r -f -a "table\t'A ranked table for people, with a timeline of the events'
json\t'The stable JSON document (schema_version 1) for CI and scripts'
markdown\t'GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments'
html\t'One self-contained HTML page (no network, no scripts) with SVG charts; use with -o'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -s o -l output -d 'Write the report to this file instead of stdout (\'-\' is stdout)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l color -d 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never' -r -f -a "auto\t'Color when writing to a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t'Always color the table, even through a pipe or into a file'
never\t'Never color'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l fail-on -d 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)' -r -f -a "info\t''
low\t''
medium\t''
high\t''
critical\t''"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l ascii -d 'Draw the table\'s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -l no-progress -d 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l prefix -d 'The server\'s log_line_prefix, when auto-detection cannot tell (e.g. \'%t [%p]: [%l-1] \')' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l pg-tz -d 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL\'s default set reads it (IST is Israel\'s +02:00), with a warning when it has other meanings' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l top -d 'How many statements, lock waits and bursts to report per category' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l n1-min-repeats -d 'N+1 burst: at least this many runs of one statement shape by one backend...' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l n1-min-total-ms -d '...taking at least this many milliseconds in all (from the first run\'s start to the last run\'s end, or their summed durations if larger; with whole-second log times, the count alone decides)...' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l n1-max-gap-ms -d '...each within this many milliseconds of the previous one (a request-sized window), with values that change from run to run' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l event-min-ms -d 'List statements at least this slow in the JSON events and report their shapes as slow_query findings (the rest are counted in events_omitted, and aggregated per fingerprint all the same)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l since -d 'Only events at or after this time (RFC 3339, or \'YYYY-MM-DD HH:MM:SS[ +HHMM]\'; UTC when no offset)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l until -d 'Only events at or before this time (same forms as --since)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l format -d 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)' -r -f -a "table\t'A ranked table for people, with a timeline of the events'
json\t'The stable JSON document (schema_version 1) for CI and scripts'
markdown\t'GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments'
html\t'One self-contained HTML page (no network, no scripts) with SVG charts; use with -o'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -s o -l output -d 'Write the report to this file instead of stdout (\'-\' is stdout)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l color -d 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never' -r -f -a "auto\t'Color when writing to a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t'Always color the table, even through a pipe or into a file'
never\t'Never color'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l fail-on -d 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)' -r -f -a "info\t''
low\t''
medium\t''
high\t''
critical\t''"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l ascii -d 'Draw the table\'s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -l no-progress -d 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand pg" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l pid -d 'The Gunicorn master (every worker is sampled) or one worker' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l duration -d 'How long to sample, e.g. 10s, 500ms, 1m' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l interval -d 'Time between two samples of a worker, e.g. 200ms' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l py-spy -d 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else' -r -F
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l pg -d 'PostgreSQL connection string, to look stuck backends up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass to a password in the DSN)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l timeout -d 'The master\'s timeout in seconds, when it cannot be read from its command line' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l format -d 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)' -r -f -a "table\t'A ranked table for people, with a timeline of the events'
json\t'The stable JSON document (schema_version 1) for CI and scripts'
markdown\t'GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments'
html\t'One self-contained HTML page (no network, no scripts) with SVG charts; use with -o'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -s o -l output -d 'Write the report to this file instead of stdout (\'-\' is stdout)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l color -d 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never' -r -f -a "auto\t'Color when writing to a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t'Always color the table, even through a pipe or into a file'
never\t'Never color'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l fail-on -d 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)' -r -f -a "info\t''
low\t''
medium\t''
high\t''
critical\t''"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l nonblocking -d 'Sample without pausing the targets (py-spy --nonblocking): less accurate, never stops them'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l ascii -d 'Draw the table\'s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -l no-progress -d 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand live" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l pid -d 'The Gunicorn master: its workers are followed as they come and go' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l pg -d 'PostgreSQL connection string, to look a caught worker\'s backend up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l py-spy -d 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else' -r -F
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l threshold -d 'When a worker counts as caught: a fraction of the master\'s timeout (0.5) or seconds (3s, 2500ms). An idle sync worker\'s heartbeat ages up to half the timeout between loop turns, so a worker is caught only once it is 1 s past that too' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l interval -d 'Time between two py-spy dumps of a caught worker, e.g. 200ms' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l duration -d 'Stop after this long (e.g. 10m, 1h); default: until Ctrl-C or SIGTERM' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l timeout -d 'The master\'s timeout in seconds, when it cannot be read from its command line' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -l format -d 'Output: json writes JSON Lines (one object per incident, then the summary report on one line); table writes one line per incident, then the summary report' -r -f -a "table\t'A ranked table for people, with a timeline of the events'
json\t'The stable JSON document (schema_version 1) for CI and scripts'
markdown\t'GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments'
html\t'One self-contained HTML page (no network, no scripts) with SVG charts; use with -o'"
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -s o -l output -d 'Write incidents and the summary to this file instead of stdout (\'-\' is stdout)' -r
complete -c wtdiag -n "__fish_wtdiag_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand completions" -s h -l help -d 'Print help'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand man" -s h -l help -d 'Print help'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "logs" -d 'Diagnose worker timeouts and kills from Gunicorn error logs'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "pg" -d 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "live" -d 'Sample the stacks of a running Gunicorn\'s workers with py-spy and name what they wait on'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "watch" -d 'Wait beside a Gunicorn master; when a worker\'s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "man" -d 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)'
complete -c wtdiag -n "__fish_wtdiag_using_subcommand help; and not __fish_seen_subcommand_from logs pg live watch completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
