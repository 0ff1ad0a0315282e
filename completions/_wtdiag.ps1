
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'wtdiag' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'wtdiag'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'wtdiag' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Diagnose worker timeouts and kills from Gunicorn error logs')
            [CompletionResult]::new('pg', 'pg', [CompletionResultType]::ParameterValue, 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts')
            [CompletionResult]::new('live', 'live', [CompletionResultType]::ParameterValue, 'Sample the stacks of a running Gunicorn''s workers with py-spy and name what they wait on')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Wait beside a Gunicorn master; when a worker''s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wtdiag;logs' {
            [CompletionResult]::new('--app-log', '--app-log', [CompletionResultType]::ParameterName, 'Application log with request start/end lines (time, pid, METHOD /path), to name the request each timed-out worker was serving')
            [CompletionResult]::new('--pg-log', '--pg-log', [CompletionResultType]::ParameterName, 'PostgreSQL server log, to tell lock waits, deadlocks and slow statements apart at the time of each timeout')
            [CompletionResult]::new('--pg-tz', '--pg-tz', [CompletionResultType]::ParameterName, 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL''s default set reads it (IST is Israel''s +02:00), with a warning when it has other meanings')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Gunicorn''s --timeout in seconds (default: Gunicorn''s 30), to read request times from access and slow-request logs against: endpoints close to it, requests past it')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Threads reading Gunicorn logs and multi-origin streams (default: one per core); the report is the same for any number')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Threads reading Gunicorn logs and multi-origin streams (default: one per core); the report is the same for any number')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only events at or after this time (RFC 3339, or ''YYYY-MM-DD HH:MM:SS[ +HHMM]''; UTC when no offset)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only events at or before this time (same forms as --since)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)')
            [CompletionResult]::new('--ascii', '--ascii', [CompletionResultType]::ParameterName, 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'wtdiag;pg' {
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'The server''s log_line_prefix, when auto-detection cannot tell (e.g. ''%t [%p]: [%l-1] '')')
            [CompletionResult]::new('--pg-tz', '--pg-tz', [CompletionResultType]::ParameterName, 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL''s default set reads it (IST is Israel''s +02:00), with a warning when it has other meanings')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'How many statements, lock waits and bursts to report per category')
            [CompletionResult]::new('--n1-min-repeats', '--n1-min-repeats', [CompletionResultType]::ParameterName, 'N+1 burst: at least this many runs of one statement shape by one backend...')
            [CompletionResult]::new('--n1-min-total-ms', '--n1-min-total-ms', [CompletionResultType]::ParameterName, '...taking at least this many milliseconds in all (from the first run''s start to the last run''s end, or their summed durations if larger; with whole-second log times, the count alone decides)...')
            [CompletionResult]::new('--n1-max-gap-ms', '--n1-max-gap-ms', [CompletionResultType]::ParameterName, '...each within this many milliseconds of the previous one (a request-sized window), with values that change from run to run')
            [CompletionResult]::new('--event-min-ms', '--event-min-ms', [CompletionResultType]::ParameterName, 'List statements at least this slow in the JSON events and report their shapes as slow_query findings (the rest are counted in events_omitted, and aggregated per fingerprint all the same)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only events at or after this time (RFC 3339, or ''YYYY-MM-DD HH:MM:SS[ +HHMM]''; UTC when no offset)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only events at or before this time (same forms as --since)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)')
            [CompletionResult]::new('--ascii', '--ascii', [CompletionResultType]::ParameterName, 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'wtdiag;live' {
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'The Gunicorn master (every worker is sampled) or one worker')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to sample, e.g. 10s, 500ms, 1m')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between two samples of a worker, e.g. 200ms')
            [CompletionResult]::new('--py-spy', '--py-spy', [CompletionResultType]::ParameterName, 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else')
            [CompletionResult]::new('--pg', '--pg', [CompletionResultType]::ParameterName, 'PostgreSQL connection string, to look stuck backends up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass to a password in the DSN)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'The master''s timeout in seconds, when it cannot be read from its command line')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)')
            [CompletionResult]::new('--nonblocking', '--nonblocking', [CompletionResultType]::ParameterName, 'Sample without pausing the targets (py-spy --nonblocking): less accurate, never stops them')
            [CompletionResult]::new('--ascii', '--ascii', [CompletionResultType]::ParameterName, 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'wtdiag;watch' {
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'The Gunicorn master: its workers are followed as they come and go')
            [CompletionResult]::new('--pg', '--pg', [CompletionResultType]::ParameterName, 'PostgreSQL connection string, to look a caught worker''s backend up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass)')
            [CompletionResult]::new('--py-spy', '--py-spy', [CompletionResultType]::ParameterName, 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else')
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'When a worker counts as caught: a fraction of the master''s timeout (0.5) or seconds (3s, 2500ms). An idle sync worker''s heartbeat ages up to half the timeout between loop turns, so a worker is caught only once it is 1 s past that too')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between two py-spy dumps of a caught worker, e.g. 200ms')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this long (e.g. 10m, 1h); default: until Ctrl-C or SIGTERM')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'The master''s timeout in seconds, when it cannot be read from its command line')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output: json writes JSON Lines (one object per incident, then the summary report on one line); table writes one line per incident, then the summary report')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write incidents and the summary to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write incidents and the summary to this file instead of stdout (''-'' is stdout)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'wtdiag;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wtdiag;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wtdiag;help' {
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Diagnose worker timeouts and kills from Gunicorn error logs')
            [CompletionResult]::new('pg', 'pg', [CompletionResultType]::ParameterValue, 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts')
            [CompletionResult]::new('live', 'live', [CompletionResultType]::ParameterValue, 'Sample the stacks of a running Gunicorn''s workers with py-spy and name what they wait on')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Wait beside a Gunicorn master; when a worker''s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wtdiag;help;logs' {
            break
        }
        'wtdiag;help;pg' {
            break
        }
        'wtdiag;help;live' {
            break
        }
        'wtdiag;help;watch' {
            break
        }
        'wtdiag;help;completions' {
            break
        }
        'wtdiag;help;man' {
            break
        }
        'wtdiag;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
