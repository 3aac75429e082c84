"""Waveform signal processing for the hub: beat detection, signal quality indices and derived rates.

Sans-I/O (numpy and scipy.signal only): arrays in, results out. ``quality`` is the
interface the alarm side uses (``analyse_ecg``, ``analyse_pleth`` -> ``LeadQuality``);
``ecg_beats`` and ``pleth_beats`` find beats, ``sqi`` computes the published
signal quality indices. See docs/signal-quality.md.
"""
