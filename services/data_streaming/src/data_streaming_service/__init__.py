"""CLPM data-streaming service: a closed-loop plant simulator streaming into the time-series store.

Run it with ``python -m data_streaming_service.app`` (or ``python -m data_streaming_service``);
``--help`` lists the options. :class:`ControlLoopDataGenerator` is the generator on its own.
"""

from data_streaming_service.data_generator import ControlLoopDataGenerator, SampleChunk

__all__ = ["ControlLoopDataGenerator", "SampleChunk"]
