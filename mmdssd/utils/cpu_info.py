"""What this CPU is and which of the instruction sets that decide bf16 and
int8 speed it has: named with every speed figure and precision choice."""
#: CPU flags that decide bf16/int8 speed, reported with every figure.
CPU_FLAGS = ('amx_bf16', 'amx_int8', 'amx_tile', 'avx512_bf16',
             'avx512_vnni', 'avx512f', 'avx_vnni', 'avx2')


def cpu_description() -> str:
    """The CPU's model name and which of :data:`CPU_FLAGS` it has."""
    name, flags = 'unknown CPU', set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    name = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
    except OSError:
        pass
    have = [flag for flag in CPU_FLAGS if flag in flags]
    return f'{name} (flags: {" ".join(have) or "none of " + str(CPU_FLAGS)})'
