
use builtin;
use str;

set edit:completion:arg-completer[wtdiag] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'wtdiag'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'wtdiag'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand logs 'Diagnose worker timeouts and kills from Gunicorn error logs'
            cand pg 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts'
            cand live 'Sample the stacks of a running Gunicorn''s workers with py-spy and name what they wait on'
            cand watch 'Wait beside a Gunicorn master; when a worker''s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode'
            cand completions 'Print a shell completion script'
            cand man 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wtdiag;logs'= {
            cand --app-log 'Application log with request start/end lines (time, pid, METHOD /path), to name the request each timed-out worker was serving'
            cand --pg-log 'PostgreSQL server log, to tell lock waits, deadlocks and slow statements apart at the time of each timeout'
            cand --pg-tz 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL''s default set reads it (IST is Israel''s +02:00), with a warning when it has other meanings'
            cand --timeout 'Gunicorn''s --timeout in seconds (default: Gunicorn''s 30), to read request times from access and slow-request logs against: endpoints close to it, requests past it'
            cand -j 'Threads reading Gunicorn logs and multi-origin streams (default: one per core); the report is the same for any number'
            cand --jobs 'Threads reading Gunicorn logs and multi-origin streams (default: one per core); the report is the same for any number'
            cand --since 'Only events at or after this time (RFC 3339, or ''YYYY-MM-DD HH:MM:SS[ +HHMM]''; UTC when no offset)'
            cand --until 'Only events at or before this time (same forms as --since)'
            cand --format 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)'
            cand -o 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --output 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --color 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never'
            cand --fail-on 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)'
            cand --ascii 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
            cand --no-progress 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'wtdiag;pg'= {
            cand --prefix 'The server''s log_line_prefix, when auto-detection cannot tell (e.g. ''%t [%p]: [%l-1] '')'
            cand --pg-tz 'Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30 (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read as PostgreSQL''s default set reads it (IST is Israel''s +02:00), with a warning when it has other meanings'
            cand --top 'How many statements, lock waits and bursts to report per category'
            cand --n1-min-repeats 'N+1 burst: at least this many runs of one statement shape by one backend...'
            cand --n1-min-total-ms '...taking at least this many milliseconds in all (from the first run''s start to the last run''s end, or their summed durations if larger; with whole-second log times, the count alone decides)...'
            cand --n1-max-gap-ms '...each within this many milliseconds of the previous one (a request-sized window), with values that change from run to run'
            cand --event-min-ms 'List statements at least this slow in the JSON events and report their shapes as slow_query findings (the rest are counted in events_omitted, and aggregated per fingerprint all the same)'
            cand --since 'Only events at or after this time (RFC 3339, or ''YYYY-MM-DD HH:MM:SS[ +HHMM]''; UTC when no offset)'
            cand --until 'Only events at or before this time (same forms as --since)'
            cand --format 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)'
            cand -o 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --output 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --color 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never'
            cand --fail-on 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)'
            cand --ascii 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
            cand --no-progress 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'wtdiag;live'= {
            cand --pid 'The Gunicorn master (every worker is sampled) or one worker'
            cand --duration 'How long to sample, e.g. 10s, 500ms, 1m'
            cand --interval 'Time between two samples of a worker, e.g. 200ms'
            cand --py-spy 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else'
            cand --pg 'PostgreSQL connection string, to look stuck backends up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass to a password in the DSN)'
            cand --timeout 'The master''s timeout in seconds, when it cannot be read from its command line'
            cand --format 'Output format: table (with a timeline), json, markdown (GitHub), html (one self-contained page with charts; use with -o)'
            cand -o 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --output 'Write the report to this file instead of stdout (''-'' is stdout)'
            cand --color 'Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces), always, never'
            cand --fail-on 'Exit with code 1 when a finding of this severity or worse is reported (CI gate)'
            cand --nonblocking 'Sample without pausing the targets (py-spy --nonblocking): less accurate, never stops them'
            cand --ascii 'Draw the table''s timeline with ASCII characters only (the default is ASCII anyway under TERM=dumb or a non-UTF-8 locale)'
            cand --no-progress 'Never draw a progress bar (it is drawn only on a terminal, for large inputs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'wtdiag;watch'= {
            cand --pid 'The Gunicorn master: its workers are followed as they come and go'
            cand --pg 'PostgreSQL connection string, to look a caught worker''s backend up in pg_stat_activity and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass)'
            cand --py-spy 'The py-spy binary (default: py-spy on PATH; one beside the target is named, never run). As root: it and every directory above it owned by root and writable by no one else'
            cand --threshold 'When a worker counts as caught: a fraction of the master''s timeout (0.5) or seconds (3s, 2500ms). An idle sync worker''s heartbeat ages up to half the timeout between loop turns, so a worker is caught only once it is 1 s past that too'
            cand --interval 'Time between two py-spy dumps of a caught worker, e.g. 200ms'
            cand --duration 'Stop after this long (e.g. 10m, 1h); default: until Ctrl-C or SIGTERM'
            cand --timeout 'The master''s timeout in seconds, when it cannot be read from its command line'
            cand --format 'Output: json writes JSON Lines (one object per incident, then the summary report on one line); table writes one line per incident, then the summary report'
            cand -o 'Write incidents and the summary to this file instead of stdout (''-'' is stdout)'
            cand --output 'Write incidents and the summary to this file instead of stdout (''-'' is stdout)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'wtdiag;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wtdiag;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wtdiag;help'= {
            cand logs 'Diagnose worker timeouts and kills from Gunicorn error logs'
            cand pg 'Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts'
            cand live 'Sample the stacks of a running Gunicorn''s workers with py-spy and name what they wait on'
            cand watch 'Wait beside a Gunicorn master; when a worker''s heartbeat goes stale, sample it with py-spy until it recovers or the master kills it, and write one incident per episode'
            cand completions 'Print a shell completion script'
            cand man 'Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wtdiag;help;logs'= {
        }
        &'wtdiag;help;pg'= {
        }
        &'wtdiag;help;live'= {
        }
        &'wtdiag;help;watch'= {
        }
        &'wtdiag;help;completions'= {
        }
        &'wtdiag;help;man'= {
        }
        &'wtdiag;help;help'= {
        }
    ]
    $completions[$command]
}
