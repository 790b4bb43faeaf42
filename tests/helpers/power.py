"""Stand-ins for power meters (no Pi is at hand): a Raspberry Pi 5's `vcgencmd pmic_read_adc`
output with known rails, and a meter command, so every power a test reads is known."""

from __future__ import annotations

from pathlib import Path

# A Raspberry Pi 5's `vcgencmd pmic_read_adc` (its real lines; a voltage-only rail of ours,
# FAN_V, beside EXT5V_V and BATT_V, and a current without a voltage, NOV_A): power is V x I over
# the rails with both.
RAILS = {  # rail: (current A, voltage V)
    "3V7_WL_SW": (0.0, 3.719676),
    "3V3_SYS": (0.05562, 3.310842),
    "1V8_SYS": (0.17078, 1.796695),
    "DDR_VDD2": (0.02537, 1.112837),
    "1V1_SYS": (0.18445, 1.107977),
    "0V8_SW": (0.35625, 0.8014618),
    "VDD_CORE": (0.56259, 0.7679846),
}
PMIC_TEXT = "\n".join(
    [f"  {r}_A current({i})={a:.8f}A" for i, (r, (a, _)) in enumerate(RAILS.items())]
    + ["      NOV_A current(30)=1.00000000A"]
    + [f"  {r}_V volt({i + 8})={v:.8f}V" for i, (r, (_, v)) in enumerate(RAILS.items())]
    + ["     EXT5V_V volt(24)=5.14794000V", "      BATT_V volt(25)=0.00000000V"]
    + ["       FAN_V volt(26)=4.90000000V"]
)
PMIC_WATTS = sum(a * v for a, v in RAILS.values())
METER_WATTS = 2.5  # what the stand-in meter prints


def vcgencmd_script(pmic_text_path: str) -> str:
    """A `vcgencmd` that answers `pmic_read_adc` with the file at ``pmic_text_path`` (a path
    where the script runs), `get_throttled` with 0x0, anything else like a Pi 4."""
    return (
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  pmic_read_adc) cat {pmic_text_path} ;;\n"
        "  get_throttled) echo throttled=0x0 ;;\n"
        "  *) echo 'error_msg=\"Command not registered\"'; exit 255 ;;\n"
        "esac\n"
    )


def stand_ins(folder: Path) -> Path:
    """A bin folder with `vcgencmd` (a Pi 5's output) and `meter` (prints watts)."""
    bin_ = folder / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    (bin_ / "pmic.txt").write_text(PMIC_TEXT + "\n")
    (bin_ / "vcgencmd").write_text(vcgencmd_script(str(bin_ / "pmic.txt")))
    meter = bin_ / "meter"
    meter.write_text(f"#!/bin/sh\necho 'INA219 on bus 1'\necho 'power: {METER_WATTS} W'\n")
    for f in (bin_ / "vcgencmd", meter):
        f.chmod(0o755)
    return bin_
