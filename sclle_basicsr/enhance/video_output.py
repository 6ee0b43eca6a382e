"""The output side of a video: the encoder set up from the first decoded frame (size, rate, time base, rotation,
colour tags), frames in and out of RGB, and the audio streams, remuxed untouched where the container can hold
their codec and re-encoded to AAC (with a note) where it cannot."""
from fractions import Fraction

import numpy as np

# Metadata a muxer writes itself; copying the input's would describe the wrong file.
_OWN_METADATA = ('encoder', 'major_brand', 'minor_version', 'compatible_brands')
_UNSPECIFIED_COLORSPACE = 2
# The layouts AAC takes, by channel count (a layout read as just "N channels" has no order to keep).
_NAMED_LAYOUTS = {1: 'mono', 2: 'stereo', 3: '3.0', 4: '4.0', 5: '5.0', 6: '5.1', 7: '6.1', 8: '7.1'}

INSTALL_HINT = 'videos need PyAV: pip install "sclle-basicsr[video]" (or pip install av)'


class VideoError(OSError):
    """A video that cannot be read or written; the message names the file."""


def import_av():
    try:
        import av
    except ImportError as err:
        raise VideoError(INSTALL_HINT) from err
    return av


def describe_av_error(err):
    """What went wrong in FFmpeg's words, without the file name PyAV appends (the caller names the file)."""
    return getattr(err, 'strerror', None) or str(err)


def _subsampling(pix_fmt):
    """``(horizontal, vertical)``: whether ``pix_fmt`` halves the chroma width / height (4:2:0 both)."""
    comps = import_av().VideoFormat(pix_fmt, 3, 3).components
    return any(c.width < 3 for c in comps), any(c.height < 3 for c in comps)


class VideoSink:
    """An output container on the open binary ``file``; streams are added by :meth:`start` (the first frame says
    what the encoder needs), audio packets arriving before that are held."""

    def __init__(self, file, muxer, source, options):
        self.av = import_av()
        self.options = options
        self.source = source
        self.container = self.av.open(file, 'w', format=muxer)
        self.container.metadata.update({k: v for k, v in source.metadata.items() if k not in _OWN_METADATA})
        self.notes = []
        self.started = False
        self._held = []
        self._audio = {}  # input stream index -> (output stream, decoder or None)
        self._last_pts = None
        self._resized = False

    # -- set-up ---------------------------------------------------------------------------------------------------
    def start(self, video, first):
        """Add the video stream (shaped by ``first``, the first decoded frame) and the audio streams."""
        av = self.av
        codec = av.codec.Codec(self.options.codec, 'w')
        formats = [f.name for f in codec.video_formats or ()]
        self.pix_fmt = 'yuv420p' if not formats or 'yuv420p' in formats else formats[0]
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        self.time_base = video.time_base or 1 / rate
        self.step = max(1, round(1 / (rate * self.time_base)))  # one frame at the average rate, in time-base units
        self.width, self.height = first.width, first.height
        sub_w, sub_h = _subsampling(self.pix_fmt)
        self.pad = (self.height % 2 if sub_h else 0, self.width % 2 if sub_w else 0)
        if any(self.pad):
            self.notes.append(f'{self.width}x{self.height} is odd and {self.pix_fmt} needs even sizes: padded to '
                              f'{self.width + self.pad[1]}x{self.height + self.pad[0]} (last column / row repeated)')
        if first.format.components[0].bits > 8 and self.pix_fmt == 'yuv420p':
            self.notes.append(f'{first.format.name} input ({first.format.components[0].bits}-bit) written as '
                              f'8-bit {self.pix_fmt}')
        options = {'crf': str(self.options.crf)} if _has_option(self.options.codec, 'crf') else {}
        stream = self.container.add_stream(self.options.codec, rate=rate, options=options)
        stream.width, stream.height = self.width + self.pad[1], self.height + self.pad[0]
        stream.pix_fmt = self.pix_fmt
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        if video.sample_aspect_ratio:
            stream.sample_aspect_ratio = video.sample_aspect_ratio
        self.colorspace = first.colorspace if first.colorspace != _UNSPECIFIED_COLORSPACE else None
        self.color_range = first.color_range or None
        for name in ('colorspace', 'color_range', 'color_primaries', 'color_trc'):
            value = getattr(first, name)
            if value:
                setattr(stream.codec_context, name, value)
        if first.rotation:
            stream.set_display_rotation(first.rotation)
        self.video = stream
        for ain in self.source.streams.audio:
            self._audio[ain.index] = self._audio_stream(ain)
        others = len(self.source.streams) - 1 - len(self._audio)
        if others:
            self.notes.append(f'{others} subtitle / data stream(s) not copied')
        self.started = True
        for packet in self._held:
            self.audio_packet(packet)
        self._held = None

    def _audio_stream(self, ain):
        """``(output stream, decoder)``: a copy of ``ain`` (decoder None), or an AAC encoder and ``ain``'s decoder."""
        codec, muxer = ain.codec_context.name, self.container.format.name
        if codec in self.container.supported_codecs:
            return self.container.add_stream_from_template(ain), None
        layout = ain.codec_context.layout
        named = layout.name if layout.name in _NAMED_LAYOUTS.values() else _NAMED_LAYOUTS.get(layout.nb_channels)
        if named is None:
            raise VideoError(f'audio stream #{ain.index} ({codec}, {layout.name}) cannot be stored in {muxer} as '
                             'is, nor re-encoded to AAC (up to 8 channels)')
        self.notes.append(f'audio stream #{ain.index} ({codec}) cannot be stored in {muxer} as is: re-encoded to '
                          'AAC')
        return self.container.add_stream('aac', rate=ain.codec_context.sample_rate, layout=named), ain.codec_context

    # -- frames ---------------------------------------------------------------------------------------------------
    def frame_pixels(self, frame):
        """A decoded frame as (H, W, 3) uint8 RGB at the first frame's size, its colour matrix and range applied."""
        size = {}
        if (frame.width, frame.height) != (self.width, self.height):
            size = {'width': self.width, 'height': self.height}
            if not self._resized:
                self._resized = True
                self.notes.append(f'the frame size changes from {self.width}x{self.height} to '
                                  f'{frame.width}x{frame.height}: such frames were scaled to the first size')
        return frame.to_ndarray(format='rgb24', src_color_range=frame.color_range or None, **size)

    def write_frames(self, rgb, pts):
        """Encode and mux enhanced frames ``rgb`` ((N, H, W, 3) uint8) with their input timestamps ``pts``."""
        av = self.av
        for pixels, stamp in zip(rgb, pts):
            if any(self.pad):
                pixels = np.pad(pixels, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode='edge')
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format='rgb24')
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace=self.colorspace,
                                   dst_color_range=self.color_range)
            frame.pts = self._timestamp(stamp)
            frame.time_base = self.time_base
            self.container.mux(self.video.encode(frame))

    def _timestamp(self, pts):
        """``pts``, or one frame after the last where it is missing or not increasing (encoders need order)."""
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self.step
        self._last_pts = pts
        return pts

    # -- audio ----------------------------------------------------------------------------------------------------
    def audio_packet(self, packet):
        if not self.started:
            self._held.append(packet)
            return
        out, decoder = self._audio[packet.stream.index]
        if decoder is None:
            if packet.dts is not None:  # the demuxer's empty end-of-stream packet has none
                packet.stream = out
                self.container.mux(packet)
            return
        try:
            frames = decoder.decode(packet)
        except self.av.FFmpegError as err:
            raise VideoError(f'audio stream #{packet.stream.index} cannot be decoded: {describe_av_error(err)}') \
                from None
        for frame in frames:
            frame.pts = None  # the encoder counts samples itself
            self.container.mux(out.encode(frame))

    # -- end ------------------------------------------------------------------------------------------------------
    def finish(self):
        """Flush the encoders (the trailer is written by :meth:`close`)."""
        self.container.mux(self.video.encode(None))
        for out, decoder in self._audio.values():
            if decoder is not None:
                self.container.mux(out.encode(None))

    def close(self):
        self.container.close()


def _has_option(codec, name):
    context = import_av().codec.CodecContext.create(codec, 'w')
    return name in {o.name for o in context.supported_options.private}
