<#
.SYNOPSIS
  Installs helseid-broker as a Windows service (WinSW) with its key folder readable only by the service account.

.DESCRIPTION
  Run in an elevated PowerShell from the unpacked, built release (the folder with dist\ and node_modules\).
  Every step is printed before it runs. Nothing is downloaded: bring WinSW-x64.exe yourself
  (https://github.com/winsw/winsw/releases, MIT licence) and Node.js 20.19+, 22 or 24.

.EXAMPLE
  .\deploy\windows\install.ps1 -WinSW C:\Install\WinSW-x64.exe
#>
[CmdletBinding()]
param(
  [Parameter(Mandatory = $true)][string]$WinSW,
  [string]$InstallDir = "$env:ProgramFiles\helseid-broker",
  [string]$DataDir = "$env:ProgramData\helseid-broker",
  [string]$NodeExe = (Get-Command node.exe -ErrorAction Stop).Source
)
$ErrorActionPreference = 'Stop'
$source = Resolve-Path (Join-Path $PSScriptRoot '..\..')
$account = 'NT SERVICE\helseid-broker'

function Step($text) { Write-Host "==> $text" }

if (-not (Test-Path (Join-Path $source 'dist\src\bin.js'))) { throw 'Build first: npm ci; npm run build' }
if (-not (Test-Path $WinSW)) { throw "WinSW not found at $WinSW" }

Step "Copying the broker to $InstallDir"
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
foreach ($item in 'dist', 'node_modules', 'package.json', 'README.md') {
  Copy-Item -Recurse -Force (Join-Path $source $item) $InstallDir
}
Copy-Item -Force $WinSW (Join-Path $InstallDir 'helseid-broker.exe')
Copy-Item -Force (Join-Path $source 'deploy\windows\helseid-broker.xml') (Join-Path $InstallDir 'helseid-broker.xml')

Step "Creating $DataDir (config, keys, logs)"
New-Item -ItemType Directory -Force -Path (Join-Path $DataDir 'keys'), (Join-Path $DataDir 'logs') | Out-Null
$config = Join-Path $DataDir 'helseid-broker.yaml'
if (-not (Test-Path $config)) { Copy-Item (Join-Path $source 'deploy\helseid-broker.example.yaml') $config }

Step 'Machine environment for the service wrapper'
[Environment]::SetEnvironmentVariable('NODE_EXE', $NodeExe, 'Machine')
[Environment]::SetEnvironmentVariable('HELSEID_BROKER_HOME', $InstallDir, 'Machine')
[Environment]::SetEnvironmentVariable('HELSEID_BROKER_DATA', $DataDir, 'Machine')

Step 'Installing the service'
& (Join-Path $InstallDir 'helseid-broker.exe') install
if ($LASTEXITCODE -ne 0) { throw 'WinSW install failed' }
# A virtual service account: no password, its own identity for ACLs.
& sc.exe config helseid-broker obj= $account
if ($LASTEXITCODE -ne 0) { throw 'setting the service account failed' }

Step "Restricting $DataDir\keys to $account (modify, for key rotation) and Administrators"
& icacls (Join-Path $DataDir 'keys') /inheritance:r /grant:r "${account}:(OI)(CI)M" /grant:r 'BUILTIN\Administrators:(OI)(CI)F'
if ($LASTEXITCODE -ne 0) { throw 'icacls on the key folder failed' }
Step "The service may read the config and write its logs"
& icacls $config /inheritance:r /grant:r "${account}:R" /grant:r 'BUILTIN\Administrators:F'
& icacls (Join-Path $DataDir 'logs') /grant "${account}:(OI)(CI)M"

Write-Host ''
Write-Host 'Next:'
Write-Host "  1. Edit $config"
Write-Host "  2. Import the client from HelseID Selvbetjening:"
Write-Host "     & '$NodeExe' '$InstallDir\dist\src\bin.js' import C:\path\to\download.zip --tenant <name> --config '$config'"
Write-Host "  3. Check: & '$NodeExe' '$InstallDir\dist\src\bin.js' check --config '$config'"
Write-Host '  4. Start-Service helseid-broker; then open http://127.0.0.1:8481/readyz'
Write-Host "  Logs: $DataDir\logs"
