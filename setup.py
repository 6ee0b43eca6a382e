"""Installs the sclle_basicsr package (BasicSR-examples style: requirements come from requirements.txt)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements():
    with open(osp.join(HERE, 'requirements.txt'), encoding='utf-8') as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'sclle_basicsr', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='sclle_basicsr',
    version=read_version(),
    description='SCL-LLE (Semantically Contrastive Learning for Low-Light Image Enhancement) as a BasicSR plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('sclle_basicsr', 'sclle_basicsr.*')),
    python_requires='>=3.9',
    install_requires=read_requirements(),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sclle-enhance=sclle_basicsr.enhance:main',
            'sclle-export=sclle_basicsr.export:main',
        ],
    },
    zip_safe=False,
)
