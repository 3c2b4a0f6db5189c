#!/usr/bin/env python3
"""fd_reuse.py STRACE: checks a daemon's descriptor numbers across threads.

STRACE is the output of strace -f -tt with (at least) -e trace=
socket,socketpair,pipe2,open,openat,eventfd2,accept4,epoll_create1,
signalfd4,dup,dup2,dup3,close.  Two faults are looked for, each printed
on a line; the exit status is 1 if any was found, else 0.

 - reuse: a thread closes a number, another thread gets that number for
   a new descriptor, and the first thread closes the number again: it
   closed the other thread's descriptor.
 - overlap: lws 4.1.6 closes a context's event pipe twice (a close, then
   the same thread's close failing with EBADF); in between the number is
   free.  Two threads' such windows overlapping, or a descriptor made by
   another thread inside one, is a teardown not held apart from another
   loop's work, where a reuse can happen.
"""
import re
import sys

MAKES = {'socket', 'open', 'openat', 'eventfd', 'eventfd2', 'accept',
         'accept4', 'epoll_create', 'epoll_create1', 'signalfd4',
         'timerfd_create', 'inotify_init1', 'memfd_create', 'dup', 'dup2',
         'dup3'}
PAIRS = {'pipe', 'pipe2', 'socketpair'}


def calls(path):
    """(tid, time, name, args, ret, rest) per finished call, in order."""
    held = {}
    with open(path, errors='replace') as f:
        for line in f:
            m = re.match(r'(\d+) +(\S+) (.*)', line.rstrip('\n'))
            if not m:
                continue
            tid, ts, text = m.groups()
            if text.endswith('<unfinished ...>'):
                held[tid] = text[:-len('<unfinished ...>')].rstrip()
                continue
            r = re.match(r'<\.\.\. \w+ resumed>(.*)', text)
            if r:
                text = held.pop(tid, '') + r.group(1)
            m = re.match(r'(\w+)\((.*)\)\s+= (-?\d+)(.*)', text)
            if m:
                yield (tid, ts, m.group(1), m.group(2), int(m.group(3)),
                       m.group(4))


def made(name, args, ret):
    """The numbers a call made."""
    if name in MAKES and ret >= 0:
        return [ret]
    if name in PAIRS and ret == 0:
        m = re.search(r'\[(\d+), (\d+)\]', args)
        if m:
            return [int(m.group(1)), int(m.group(2))]
    return []


def check(path):
    faults = []
    closed = {}     # fd -> [closing tid, time, [(maker, time)...]]
    free = {}       # fd -> (tid, index in log): closed, not made since
    log = []        # (tid, time, fds made)
    windows = []    # (start, end index, tid, fd, start time, end time)
    for tid, ts, name, args, ret, rest in calls(path):
        fds = made(name, args, ret)
        for fd in fds:
            free.pop(fd, None)
            if fd in closed:
                closed[fd][2].append((tid, ts))
        log.append((tid, ts, fds))
        if name != 'close':
            continue
        fd = int(args.split(',')[0])
        if ret == 0:
            c = closed.get(fd)
            if c and c[0] == tid and c[2] and \
                    all(maker != tid for maker, _ in c[2]):
                faults.append(f'reuse: fd {fd} closed by thread {tid} at '
                              f'{c[1]}, made by thread {c[2][-1][0]} at '
                              f'{c[2][-1][1]}, closed again by {tid} at {ts}')
            closed[fd] = [tid, ts, []]
            free[fd] = (tid, len(log), ts)
        elif 'EBADF' in rest and fd in free and free[fd][0] == tid:
            _, start, t0 = free.pop(fd)
            windows.append((start, len(log), tid, fd, t0, ts))
    for i, (s, e, tid, fd, t0, t1) in enumerate(windows):
        others = [(t, ts, fds) for t, ts, fds in log[s:e] if fds and t != tid]
        if others:
            t, ts, fds = others[0]
            faults.append(f'overlap: thread {tid} had fd {fd} free '
                          f'({t0} to {t1}); thread {t} made fd {fds[0]} '
                          f'at {ts}')
        for s2, e2, tid2, fd2, u0, u1 in windows[i + 1:]:
            if tid2 != tid and s < e2 and s2 < e:
                faults.append(f'overlap: thread {tid} had fd {fd} free '
                              f'({t0} to {t1}), thread {tid2} fd {fd2} '
                              f'({u0} to {u1})')
    return faults, len(windows)


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: fd_reuse.py STRACE')
    faults, n = check(sys.argv[1])
    for f in faults:
        print(f)
    print(f'fd_reuse: {n} event pipe windows, {len(faults)} faults')
    sys.exit(1 if faults else 0)


if __name__ == '__main__':
    main()
