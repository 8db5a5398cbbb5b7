"""Motion magnification in ffmpeg chains.

- ``vmm-filter`` (:mod:`ffmpeg_filter.cli`, also ``python -m ffmpeg_filter``): a YUV4MPEG2 pipe
  filter, ``ffmpeg ... -f yuv4mpegpipe - | vmm-filter ... | ffmpeg -f yuv4mpegpipe -i - ...``.
- ``vmm-ffmpeg`` (:mod:`ffmpeg_filter.wrap`): file to file, running ffmpeg to decode and encode,
  keeping audio, frame rate, time base and colour tags.
- :mod:`ffmpeg_filter.y4m`: the y4m format (header, frame reader and writer).
"""
